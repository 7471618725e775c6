# bash completion for bulwark(1). `make install` puts it in
# $(PREFIX)/share/bash-completion/completions/bulwark; to try it from a checkout:
#   source completion/bulwark.bash
# It does not need the bash-completion package, and uses its _command_offset when there.

# The policy file a subcommand would read, searched as bulwark(1) FILES says: -c/--config on
# the line, $BULWARK_CONFIG, ./bulwark.yaml, the user's, the system's; empty for the
# built-in default.
_bulwark_policy()
{
	local i
	for ((i = 2; i < ${#_bw_words[@]} - 1; i++)); do
		case ${_bw_words[i]} in
		-c | --config) printf '%s\n' "${_bw_words[i + 1]}"; return ;;
		--config=*) printf '%s\n' "${_bw_words[i]#--config=}"; return ;;
		esac
	done
	local user=""
	if [[ ${XDG_CONFIG_HOME-} == /* ]]; then
		user=$XDG_CONFIG_HOME/bulwark/bulwark.yaml
	elif [[ -n ${HOME-} ]]; then
		user=$HOME/.config/bulwark/bulwark.yaml
	fi
	if [[ -n ${BULWARK_CONFIG-} ]]; then
		printf '%s\n' "$BULWARK_CONFIG"
	elif [[ -e bulwark.yaml ]]; then
		printf '%s\n' bulwark.yaml
	elif [[ -n $user && -e $user ]]; then
		printf '%s\n' "$user"
	elif [[ -e /etc/bulwark/bulwark.yaml ]]; then
		printf '%s\n' /etc/bulwark/bulwark.yaml
	fi
}

# Targets for `explain OP TARGET`: the literal entries (no wildcard, no address range) of
# the policy's match lists for OP: dest for sockets, host for resolve, db for sqlite. Read
# from `bulwark check`, which prints each list on one line in flow style.
_bulwark_targets()
{
	local key policy
	case $1 in
	resolve) key=host ;;
	sqlite) key=db ;;
	*) key=dest ;;
	esac
	policy=$(_bulwark_policy)
	if [[ -n $policy ]]; then set -- "$policy"; else set -- --default; fi
	"${_bw_words[0]}" check "$@" 2>/dev/null |
		sed -n "s/^ *$key: \[\(.*\)\]\$/\1/p" | tr ',' '\n' |
		sed 's/^ *"\{0,1\}//; s/"\{0,1\} *$//' | grep -v '[*?]' | grep -v '/[0-9]*$'
}

# Live process groups: the state files in the status directory (--dir, else the default).
_bulwark_groups()
{
	local dir="" i f
	for ((i = 2; i < ${#_bw_words[@]} - 1; i++)); do
		case ${_bw_words[i]} in
		-d | --dir) dir=${_bw_words[i + 1]} ;;
		--dir=*) dir=${_bw_words[i]#--dir=} ;;
		esac
	done
	if [[ -z $dir ]]; then
		if [[ -n ${XDG_RUNTIME_DIR-} ]]; then dir=$XDG_RUNTIME_DIR/bulwark; else dir=/tmp/bulwark-$(id -u); fi
	fi
	for f in "$dir"/*.state; do
		[[ -e $f ]] && { f=${f##*/}; printf '%s\n' "${f%.state}"; }
	done
}

_bulwark_reply()   # WORDLIST: the words that begin with the current one
{
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$1" -- "$_bw_cur"))
}

_bulwark_files()   # [-d]: file (or directory) names
{
	local IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen "${1:--f}" -- "$_bw_cur"))
}

_bulwark()
{
	# Words split at blanks only: bash also splits at ':' and '=' (COMP_WORDBREAKS),
	# which would cut file:PATH in two.
	local line=${COMP_LINE:0:COMP_POINT}
	local -a _bw_words
	read -ra _bw_words <<<"$line"
	[[ -z $line || $line == *[[:blank:]] ]] && _bw_words+=("")
	local cword=$((${#_bw_words[@]} - 1))
	local _bw_cur=${_bw_words[cword]} prev=${_bw_words[cword - 1]} cmd=${_bw_words[1]-}
	COMPREPLY=()

	if ((cword == 1)); then
		_bulwark_reply $'run\ncheck\nexplain\nreport\nsuggest\nstatus\nreload\nmetrics\nversion\nhelp\n-V\n--version\n-h\n--help'
		return
	fi

	# `run`: after its options comes a command, completed as that command would be
	if [[ $cmd == run ]]; then
		local i start=0
		for ((i = 2; i < cword; i++)); do
			case ${_bw_words[i]} in
			--) start=$((i + 1)); break ;;
			-c | --config | -o | --log | -l | --level | --seed) ((i++)) ;;
			-*) ;;
			*) start=$i; break ;;
			esac
		done
		if ((start == cword)); then
			local IFS=$'\n'
			COMPREPLY=($(compgen -c -- "$_bw_cur"))
			return
		elif ((start > 0)); then
			# _command_offset counts bash's own words: usable when they are ours
			if declare -F _command_offset >/dev/null && ((${#COMP_WORDS[@]} == ${#_bw_words[@]})); then
				_command_offset "$start"
			else
				_bulwark_files
			fi
			return
		fi
	fi

	# the argument of an option
	case $prev in
	-c | --config)
		_bulwark_files
		return ;;
	-o | --log)
		if [[ $_bw_cur == file:* ]]; then
			local IFS=$'\n' path=${_bw_cur#file:}
			compopt -o filenames 2>/dev/null
			# bash replaces only what follows the ':' when ':' breaks words
			if [[ $COMP_WORDBREAKS == *:* ]]; then
				COMPREPLY=($(compgen -f -- "$path"))
			else
				COMPREPLY=($(compgen -f -P file: -- "$path"))
			fi
		else
			_bulwark_reply $'stderr\nsyslog\nfile:'
			[[ ${COMPREPLY[*]} == file: ]] && compopt -o nospace 2>/dev/null
		fi
		return ;;
	-l | --level)
		# metrics -l is --listen: an address, nothing to offer
		[[ $cmd == metrics ]] || _bulwark_reply $'error\nwarn\ninfo\ndebug'
		return ;;
	--listen)
		return ;;
	-t | --textfile)
		_bulwark_files
		return ;;
	--seed | --db | --pid)
		return ;;
	--prog)
		local IFS=$'\n'
		COMPREPLY=($(compgen -c -- "$_bw_cur"))
		return ;;
	-f | --format)
		if [[ $cmd == report ]]; then
			_bulwark_reply $'table\njson\nprometheus\nhtml'
		else
			_bulwark_reply $'table\njson\nprometheus'
		fi
		return ;;
	-g | --group)
		_bulwark_reply "$(_bulwark_groups)"
		return ;;
	-d | --dir)
		_bulwark_files -d
		return ;;
	esac

	# the operands given so far (words that are neither options nor their arguments)
	local -a args=()
	local i
	for ((i = 2; i < cword; i++)); do
		case ${_bw_words[i]} in
		-c | --config | -o | --log | -l | --level | --seed | --prog | --db | -f | --format | -g | --group | -d | --dir | --pid | --listen | -t | --textfile)
			((i++)) ;;
		-?*) ;;
		*) args+=("${_bw_words[i]}") ;;
		esac
	done

	case $cmd in
	run)
		if [[ $_bw_cur == -* ]]; then
			_bulwark_reply $'-c\n--config\n-o\n--log\n-l\n--level\n--observe\n--seed\n-q\n--quiet\n-h\n--help\n--'
		else
			local IFS=$'\n'
			COMPREPLY=($(compgen -c -- "$_bw_cur"))
		fi ;;
	check)
		if [[ $_bw_cur == -* ]]; then
			_bulwark_reply $'-c\n--config\n--default\n-q\n--quiet\n-h\n--help'
		elif ((${#args[@]} == 0)); then
			_bulwark_files
		fi ;;
	explain)
		if [[ $_bw_cur == -* ]]; then
			_bulwark_reply $'-c\n--config\n--prog\n--db\n--resolve\n-h\n--help'
		elif ((${#args[@]} == 0)); then
			_bulwark_reply $'connect\naccept\nsend\nrecv\nresolve\nsqlite\npg\nmysql\nredis'
		elif ((${#args[@]} == 1)); then
			_bulwark_reply "$(_bulwark_targets "${args[0]}")"
			if [[ ${args[0]} == sqlite ]]; then
				local IFS=$'\n'
				compopt -o filenames 2>/dev/null
				COMPREPLY+=($(compgen -f -- "$_bw_cur"))
			fi
		fi ;;
	report)
		if [[ $_bw_cur == -* ]]; then
			_bulwark_reply $'-f\n--format\n-w\n--wide\n--replay\n-c\n--config\n--pid\n-h\n--help\n-'
		else
			_bulwark_files
		fi ;;
	suggest)
		if [[ $_bw_cur == -* ]]; then
			_bulwark_reply $'-h\n--help\n-'
		else
			_bulwark_files
		fi ;;
	status)
		[[ $_bw_cur == -* ]] && _bulwark_reply $'-g\n--group\n-d\n--dir\n-f\n--format\n-w\n--wide\n--prune\n--fleet\n-h\n--help' ;;
	reload)
		[[ $_bw_cur == -* ]] && _bulwark_reply $'-g\n--group\n-d\n--dir\n-h\n--help' ;;
	metrics)
		[[ $_bw_cur == -* ]] && _bulwark_reply $'-l\n--listen\n-t\n--textfile\n-g\n--group\n-d\n--dir\n-h\n--help' ;;
	esac
}

complete -F _bulwark bulwark
