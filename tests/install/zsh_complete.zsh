# Drive an interactive zsh in a pseudo-terminal and print, for each LINE, what TAB offers
# there (the screen text, escape sequences removed), one line per LINE.
# usage: zsh -f zsh_complete.zsh FPATH_DIR PATH_DIR LINE...
setopt extendedglob
zmodload zsh/zpty || exit 1
zpty -b z 'zsh -f -i' || exit 1
# Input must only be typed at the prompt: typed while a command runs, the terminal is in
# line mode and ^U there erases it. The prompt is printed once the line editor owns the
# terminal, so each step waits for the marker the command prints and the prompt after it.
step() { # N: wait for MARK-N and the prompt
	zpty -w z "echo MARK-\$(($1+0))END"   # typed $((N+0)), printed N: the output, not the echo
	zpty -r z out "*MARK-${1}END*<rdy>*"
}
zpty -w z "PS1='<rdy>'; PROMPT_EOL_MARK=''; fpath=(${(q)1} \$fpath); PATH=${(q)2}:\$PATH"
zpty -w z "autoload -Uz compinit; compinit -u -D; LISTMAX=10000; unsetopt beep"
step 0 || exit 1
shift 2
n=0
for q in "$@"; do
	(( n++ ))
	zpty -n -w z "$q"$'\t'$'\C-u'
	if ! step $n; then print -r -- "[$q] (no answer)"; continue; fi
	out=${out//$'\r'/}
	out=${out//$'\e'\[[0-9;?]#[A-Za-z]/ }
	out=${out%%echo MARK-*}
	print -r -- "[$q] ${${(f)out}[*]}"
done
zpty -d z
