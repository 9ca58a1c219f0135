# offgrid shell completion, generated from the Typer app by completions/generate.py; do not edit.
# Load it with `. offgrid.bash` (or `offgrid completion install bash`).

_offgrid_table() {  # $1: table, $2: key (a command path, or "path option")
    case "$1" in
    subs) case "$2" in
        "") echo "chat summarize see imagine transcribe serve doctor models config history completion" ;;
        "models") echo "list pull rm path info search files" ;;
        "config") echo "show set unset path keys" ;;
        "history") echo "show export rm" ;;
        "completion") echo "install show" ;;
        esac ;;
    opts) case "$2" in
        "") echo "--debug --version --help -h" ;;
        "chat") echo "--model -m --system -s --system-file --temperature --top-p --top-k --min-p --repeat-penalty --max-tokens -n --ctx --threads -t --seed --stop --continue -c --session --no-save --think --no-think --clipboard --copy --notify --no-notify --flash-attn --no-flash-attn --kv-cache --batch --server --api-key --json --stats --plain --yes -y --force --help -h" ;;
        "summarize") echo "--ask -a --extract -x --points --length --lang --role --list-roles --pages -p --password --output -o --model -m --server --api-key --ctx --threads -t --max-tokens -n --temperature --seed --json --stats --plain --no-save --clipboard --copy --notify --no-notify --yes -y --force --help -h" ;;
        "see") echo "--prompt -p --model -m --server --api-key --mmproj --extract -e --chat --camera --camera-id --page --password --max-side --system -s --temperature --max-tokens -n --ctx --threads -t --seed --no-save --copy --json --stats --plain --yes -y --force --help -h" ;;
        "imagine") echo "--output -o --negative --steps --cfg-scale --sampler --seed --width --height --size --count --init --strength --from-png --model -m --diffusion-model --clip-l --clip-g --t5xxl --llm --vae --taesd --threads -t --open --json --no-save --notify --no-notify --yes -y --force --help -h" ;;
        "transcribe") echo "--mic --model -m --language -l --translate --prompt --word-timestamps --format -f --output -o --threads -t --no-save --copy --notify --no-notify --stats --plain --yes -y --force --help -h" ;;
        "serve") echo "--model -m --host --port -p --api-key --save --ctx --threads -t --seed --flash-attn --no-flash-attn --kv-cache --batch --yes -y --force --help -h" ;;
        "doctor") echo "--json --help -h" ;;
        "models") echo "--help -h" ;;
        "models list") echo "--task --json --help -h" ;;
        "models pull") echo "--help -h" ;;
        "models rm") echo "--help -h" ;;
        "models path") echo "--task --help -h" ;;
        "models info") echo "--json --help -h" ;;
        "models search") echo "--limit --help -h" ;;
        "models files") echo "--help -h" ;;
        "config") echo "--help -h" ;;
        "config show") echo "--help -h" ;;
        "config set") echo "--help -h" ;;
        "config unset") echo "--help -h" ;;
        "config path") echo "--help -h" ;;
        "config keys") echo "--help -h" ;;
        "history") echo "--command --search --limit --json --help -h" ;;
        "history show") echo "--json --help -h" ;;
        "history export") echo "--format -f --output -o --force --help -h" ;;
        "history rm") echo "--all --help -h" ;;
        "completion") echo "--help -h" ;;
        "completion install") echo "--force --help -h" ;;
        "completion show") echo "--help -h" ;;
        esac ;;
    valued) case "$2" in
        "chat") echo "--model -m --system -s --system-file --temperature --top-p --top-k --min-p --repeat-penalty --max-tokens -n --ctx --threads -t --seed --stop --session --kv-cache --batch --server --api-key" ;;
        "summarize") echo "--ask -a --extract -x --points --length --lang --role --pages -p --password --output -o --model -m --server --api-key --ctx --threads -t --max-tokens -n --temperature --seed" ;;
        "see") echo "--prompt -p --model -m --server --api-key --mmproj --extract -e --camera-id --page --password --max-side --system -s --temperature --max-tokens -n --ctx --threads -t --seed" ;;
        "imagine") echo "--output -o --negative --steps --cfg-scale --sampler --seed --width --height --size --count --init --strength --from-png --model -m --diffusion-model --clip-l --clip-g --t5xxl --llm --vae --taesd --threads -t" ;;
        "transcribe") echo "--model -m --language -l --prompt --format -f --output -o --threads -t" ;;
        "serve") echo "--model -m --host --port -p --api-key --ctx --threads -t --seed --kv-cache --batch" ;;
        "models list") echo "--task" ;;
        "models path") echo "--task" ;;
        "models search") echo "--limit" ;;
        "history") echo "--command --search --limit" ;;
        "history export") echo "--format -f --output -o" ;;
        esac ;;
    args) case "$2" in
        "") echo "none" ;;
        "chat") echo "value" ;;
        "summarize") echo "value" ;;
        "see") echo "value" ;;
        "imagine") echo "value" ;;
        "transcribe") echo "value" ;;
        "serve") echo "none" ;;
        "doctor") echo "none" ;;
        "models") echo "none" ;;
        "models list") echo "none" ;;
        "models pull") echo "dynamic" ;;
        "models rm") echo "dynamic" ;;
        "models path") echo "dynamic" ;;
        "models info") echo "dynamic" ;;
        "models search") echo "value" ;;
        "models files") echo "value" ;;
        "config") echo "none" ;;
        "config show") echo "none" ;;
        "config set") echo "value" ;;
        "config unset") echo "value" ;;
        "config path") echo "none" ;;
        "config keys") echo "none" ;;
        "history") echo "none" ;;
        "history show") echo "value" ;;
        "history export") echo "value" ;;
        "history rm") echo "value" ;;
        "completion") echo "none" ;;
        "completion install") echo "choice bash zsh fish" ;;
        "completion show") echo "choice bash zsh fish" ;;
        esac ;;
    kinds) case "$2" in
        "chat --model") echo "dynamic" ;;
        "chat -m") echo "dynamic" ;;
        "chat --system") echo "value" ;;
        "chat -s") echo "value" ;;
        "chat --system-file") echo "file" ;;
        "chat --temperature") echo "value" ;;
        "chat --top-p") echo "value" ;;
        "chat --top-k") echo "value" ;;
        "chat --min-p") echo "value" ;;
        "chat --repeat-penalty") echo "value" ;;
        "chat --max-tokens") echo "value" ;;
        "chat -n") echo "value" ;;
        "chat --ctx") echo "value" ;;
        "chat --threads") echo "value" ;;
        "chat -t") echo "value" ;;
        "chat --seed") echo "value" ;;
        "chat --stop") echo "value" ;;
        "chat --session") echo "dynamic" ;;
        "chat --kv-cache") echo "value" ;;
        "chat --batch") echo "value" ;;
        "chat --server") echo "value" ;;
        "chat --api-key") echo "value" ;;
        "summarize --ask") echo "value" ;;
        "summarize -a") echo "value" ;;
        "summarize --extract") echo "value" ;;
        "summarize -x") echo "value" ;;
        "summarize --points") echo "value" ;;
        "summarize --length") echo "value" ;;
        "summarize --lang") echo "value" ;;
        "summarize --role") echo "value" ;;
        "summarize --pages") echo "value" ;;
        "summarize -p") echo "value" ;;
        "summarize --password") echo "value" ;;
        "summarize --output") echo "file" ;;
        "summarize -o") echo "file" ;;
        "summarize --model") echo "dynamic" ;;
        "summarize -m") echo "dynamic" ;;
        "summarize --server") echo "value" ;;
        "summarize --api-key") echo "value" ;;
        "summarize --ctx") echo "value" ;;
        "summarize --threads") echo "value" ;;
        "summarize -t") echo "value" ;;
        "summarize --max-tokens") echo "value" ;;
        "summarize -n") echo "value" ;;
        "summarize --temperature") echo "value" ;;
        "summarize --seed") echo "value" ;;
        "see --prompt") echo "value" ;;
        "see -p") echo "value" ;;
        "see --model") echo "dynamic" ;;
        "see -m") echo "dynamic" ;;
        "see --server") echo "value" ;;
        "see --api-key") echo "value" ;;
        "see --mmproj") echo "value" ;;
        "see --extract") echo "value" ;;
        "see -e") echo "value" ;;
        "see --camera-id") echo "value" ;;
        "see --page") echo "value" ;;
        "see --password") echo "value" ;;
        "see --max-side") echo "value" ;;
        "see --system") echo "value" ;;
        "see -s") echo "value" ;;
        "see --temperature") echo "value" ;;
        "see --max-tokens") echo "value" ;;
        "see -n") echo "value" ;;
        "see --ctx") echo "value" ;;
        "see --threads") echo "value" ;;
        "see -t") echo "value" ;;
        "see --seed") echo "value" ;;
        "imagine --output") echo "file" ;;
        "imagine -o") echo "file" ;;
        "imagine --negative") echo "value" ;;
        "imagine --steps") echo "value" ;;
        "imagine --cfg-scale") echo "value" ;;
        "imagine --sampler") echo "value" ;;
        "imagine --seed") echo "value" ;;
        "imagine --width") echo "value" ;;
        "imagine --height") echo "value" ;;
        "imagine --size") echo "value" ;;
        "imagine --count") echo "value" ;;
        "imagine --init") echo "file" ;;
        "imagine --strength") echo "value" ;;
        "imagine --from-png") echo "file" ;;
        "imagine --model") echo "dynamic" ;;
        "imagine -m") echo "dynamic" ;;
        "imagine --diffusion-model") echo "value" ;;
        "imagine --clip-l") echo "value" ;;
        "imagine --clip-g") echo "value" ;;
        "imagine --t5xxl") echo "value" ;;
        "imagine --llm") echo "value" ;;
        "imagine --vae") echo "value" ;;
        "imagine --taesd") echo "value" ;;
        "imagine --threads") echo "value" ;;
        "imagine -t") echo "value" ;;
        "transcribe --model") echo "dynamic" ;;
        "transcribe -m") echo "dynamic" ;;
        "transcribe --language") echo "value" ;;
        "transcribe -l") echo "value" ;;
        "transcribe --prompt") echo "value" ;;
        "transcribe --format") echo "value" ;;
        "transcribe -f") echo "value" ;;
        "transcribe --output") echo "file" ;;
        "transcribe -o") echo "file" ;;
        "transcribe --threads") echo "value" ;;
        "transcribe -t") echo "value" ;;
        "serve --model") echo "dynamic" ;;
        "serve -m") echo "dynamic" ;;
        "serve --host") echo "value" ;;
        "serve --port") echo "value" ;;
        "serve -p") echo "value" ;;
        "serve --api-key") echo "value" ;;
        "serve --ctx") echo "value" ;;
        "serve --threads") echo "value" ;;
        "serve -t") echo "value" ;;
        "serve --seed") echo "value" ;;
        "serve --kv-cache") echo "value" ;;
        "serve --batch") echo "value" ;;
        "models list --task") echo "value" ;;
        "models path --task") echo "value" ;;
        "models search --limit") echo "value" ;;
        "history --command") echo "value" ;;
        "history --search") echo "value" ;;
        "history --limit") echo "value" ;;
        "history export --format") echo "value" ;;
        "history export -f") echo "value" ;;
        "history export --output") echo "file" ;;
        "history export -o") echo "file" ;;
        esac ;;
    esac
}

_offgrid_has() {  # is word $2 in the list $1?
    [[ " $1 " == *" $2 "* ]]
}

_offgrid_dynamic() {  # ask offgrid for values (Typer's protocol)
    local IFS=$'\n'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]:0:COMP_CWORD+1}" COMP_CWORD=$COMP_CWORD \
                   _OFFGRID_COMPLETE=complete_bash offgrid 2>/dev/null ) )
}

_offgrid() {
    local cur="${COMP_WORDS[COMP_CWORD]}" cmdpath="" i word kind
    COMPREPLY=()
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${COMP_WORDS[i]}"
        if _offgrid_has "$(_offgrid_table valued "$cmdpath")" "$word"; then
            (( i++ ))
        elif _offgrid_has "$(_offgrid_table subs "$cmdpath")" "$word"; then
            cmdpath="${cmdpath:+$cmdpath }$word"
        fi
    done
    local prev="${COMP_WORDS[COMP_CWORD-1]}"
    if (( COMP_CWORD > 1 )) && _offgrid_has "$(_offgrid_table valued "$cmdpath")" "$prev"; then
        kind="$(_offgrid_table kinds "${cmdpath:+$cmdpath }$prev")"
    elif [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$(_offgrid_table opts "$cmdpath")" -- "$cur") )
        return 0
    elif [[ -n "$(_offgrid_table subs "$cmdpath")" ]]; then
        COMPREPLY=( $(compgen -W "$(_offgrid_table subs "$cmdpath")" -- "$cur") )
        return 0
    else
        kind="$(_offgrid_table args "$cmdpath")"
    fi
    case "$kind" in
        file) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
        dynamic) _offgrid_dynamic ;;
        choice\ *) COMPREPLY=( $(compgen -W "${kind#choice }" -- "$cur") ) ;;
    esac
    return 0
}

complete -o default -F _offgrid offgrid
