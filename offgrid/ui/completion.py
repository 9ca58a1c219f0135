"""Shell completion: static bash, zsh and fish scripts generated from the Typer app, and the
dynamic values (model aliases, chat session names) they ask `offgrid` for.

Typer's own scripts start Python on every Tab, which takes a second or two on a phone. These
scripts know the command tree, options and file arguments by heart and only call
`offgrid` for values that change (through Typer's completion protocol, so the `autocompletion`
callbacks on the options are the single source of those values).
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offgrid.device import paths

SHELLS = ("bash", "zsh", "fish")
PROG = "offgrid"
COMPLETE_VAR = "_OFFGRID_COMPLETE"
HEADER = "offgrid shell completion, generated from the Typer app by completions/generate.py"


# --- dynamic values (Typer `autocompletion` callbacks: (ctx, args, incomplete)) --------------
def model_aliases(ctx: Any = None, args: Any = None, incomplete: str = "") -> list[tuple[str, str]]:
    """Catalog aliases with their descriptions."""
    from offgrid.models import catalog

    return [(e.alias, e.description.split(".")[0][:60]) for e in catalog.load().entries.values()
            if e.alias.startswith(incomplete)]


def session_names(ctx: Any = None, args: Any = None, incomplete: str = "") -> list[str]:
    """Names of saved conversations; never creates the history database."""
    if not paths.history_db().exists():
        return []
    from offgrid.history import History
    from offgrid.errors import OffgridError

    try:
        return [n for n in History().names() if n.startswith(incomplete)]
    except OffgridError:
        return []


# --- the command tree --------------------------------------------------------------------------
@dataclass
class Option:
    names: list[str]
    takes_value: bool
    kind: str = "value"  # value | file | choice | dynamic | flag
    choices: list[str] = field(default_factory=list)


@dataclass
class Command:
    path: str  # "" for the root, "models pull" for a subcommand
    help: str
    options: list[Option]
    subcommands: dict[str, str]  # name -> one-line help
    argument: str = "none"  # none | file | dynamic | value


def _param_kind(param: Any) -> tuple[str, list[str]]:
    if getattr(param, "_custom_shell_complete", None) is not None:
        return "dynamic", []
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and getattr(descriptor, "is_choice", False) and descriptor.choices:
        return "choice", [str(getattr(c, "value", c)) for c in descriptor.choices]
    if getattr(descriptor, "is_path", False) or getattr(descriptor, "is_file", False) or _is_path(
            getattr(descriptor, "annotation", None)):
        return "file", []
    return "value", []


def _kind_word(kind: str, choices: list[str]) -> str:
    """How the scripts spell a value kind: file, dynamic, value, or "choice a b c"."""
    return f"choice {_words(choices)}" if kind == "choice" else kind


def _is_path(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, Path)
    return any(_is_path(a) for a in typing.get_args(annotation))


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].rstrip(".") if (text or "").strip() else ""


def walk(command: Any, path: str = "") -> list[Command]:
    """Every command of the click tree, depth first."""
    options: list[Option] = []
    argument = "none"
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind, choices = _param_kind(param)
        if getattr(param, "param_type_name", "") == "argument":
            if argument == "none":
                argument = _kind_word(kind, choices)
            continue
        flag = bool(getattr(param, "is_flag", False)) or bool(getattr(param, "count", False))
        names = list(param.opts) + list(param.secondary_opts)
        options.append(Option(names, not flag, "flag" if flag else kind, choices))
    options.append(Option(["--help", "-h"], False, "flag"))
    subs = {name: _first_line(sub.get_short_help_str(80) if hasattr(sub, "get_short_help_str")
                              else sub.help)
            for name, sub in getattr(command, "commands", {}).items()
            if not getattr(sub, "hidden", False)}
    found = [Command(path, _first_line(command.help), options, subs, argument)]
    for name, sub in getattr(command, "commands", {}).items():
        if name in subs:
            found += walk(sub, f"{path} {name}".strip())
    return found


def command_tree() -> list[Command]:
    from offgrid.cli import full_command

    return walk(full_command())


# --- script generation -------------------------------------------------------------------------
def _words(items: list[str]) -> str:
    return " ".join(items)


def _case_lines(table: dict[str, str], indent: str = "        ") -> list[str]:
    return [f'{indent}"{key}") echo "{value}" ;;' for key, value in table.items() if value]


def _tables(tree: list[Command]) -> dict[str, dict[str, str]]:
    """Per command path: subcommands, all options, options taking a value, argument kind, and
    per "path option": the kind of value (file, dynamic, choice words, value)."""
    subs, opts, valued, args, kinds = {}, {}, {}, {}, {}
    for cmd in tree:
        subs[cmd.path] = _words(list(cmd.subcommands))
        opts[cmd.path] = _words([n for o in cmd.options for n in o.names])
        valued[cmd.path] = _words([n for o in cmd.options if o.takes_value for n in o.names])
        args[cmd.path] = cmd.argument
        for option in cmd.options:
            if option.takes_value:
                for name in option.names:
                    kinds[f"{cmd.path} {name}".strip()] = _kind_word(option.kind, option.choices)
    return {"subs": subs, "opts": opts, "valued": valued, "args": args, "kinds": kinds}


# The case tables and the word test, shared by the bash and zsh scripts.
SH_TABLES = r'''_offgrid_table() {{  # $1: table, $2: key (a command path, or "path option")
    case "$1" in
    subs) case "$2" in
{subs}
        esac ;;
    opts) case "$2" in
{opts}
        esac ;;
    valued) case "$2" in
{valued}
        esac ;;
    args) case "$2" in
{args}
        esac ;;
    kinds) case "$2" in
{kinds}
        esac ;;
    esac
}}

_offgrid_has() {{  # is word $2 in the list $1?
    [[ " $1 " == *" $2 "* ]]
}}
'''

BASH = r'''# {header}; do not edit.
# Load it with `. offgrid.bash` (or `offgrid completion install bash`).

{tables}
_offgrid_dynamic() {{  # ask offgrid for values (Typer's protocol)
    local IFS=$'\n'
    COMPREPLY=( $( env COMP_WORDS="${{COMP_WORDS[*]:0:COMP_CWORD+1}}" COMP_CWORD=$COMP_CWORD \
                   {var}=complete_bash offgrid 2>/dev/null ) )
}}

_offgrid() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmdpath="" i word kind
    COMPREPLY=()
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${{COMP_WORDS[i]}}"
        if _offgrid_has "$(_offgrid_table valued "$cmdpath")" "$word"; then
            (( i++ ))
        elif _offgrid_has "$(_offgrid_table subs "$cmdpath")" "$word"; then
            cmdpath="${{cmdpath:+$cmdpath }}$word"
        fi
    done
    local prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if (( COMP_CWORD > 1 )) && _offgrid_has "$(_offgrid_table valued "$cmdpath")" "$prev"; then
        kind="$(_offgrid_table kinds "${{cmdpath:+$cmdpath }}$prev")"
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
        choice\ *) COMPREPLY=( $(compgen -W "${{kind#choice }}" -- "$cur") ) ;;
    esac
    return 0
}}

complete -o default -F _offgrid offgrid
'''

ZSH = r'''#compdef offgrid
# {header}; do not edit.
# Put it on $fpath as `_offgrid` (or `offgrid completion install zsh`).

{tables}
_offgrid() {{
    local cur="${{words[CURRENT]}}" cmdpath="" i word kind
    local -a candidates
    for (( i = 2; i < CURRENT; i++ )); do
        word="${{words[i]}}"
        if _offgrid_has "$(_offgrid_table valued "$cmdpath")" "$word"; then
            (( i++ ))
        elif _offgrid_has "$(_offgrid_table subs "$cmdpath")" "$word"; then
            cmdpath="${{cmdpath:+$cmdpath }}$word"
        fi
    done
    local prev="${{words[CURRENT-1]}}"
    if (( CURRENT > 2 )) && _offgrid_has "$(_offgrid_table valued "$cmdpath")" "$prev"; then
        kind="$(_offgrid_table kinds "${{cmdpath:+$cmdpath }}$prev")"
    elif [[ "$cur" == -* ]]; then
        candidates=( ${{=$(_offgrid_table opts "$cmdpath")}} )
        compadd -- $candidates
        return
    elif [[ -n "$(_offgrid_table subs "$cmdpath")" ]]; then
        candidates=( ${{=$(_offgrid_table subs "$cmdpath")}} )
        compadd -- $candidates
        return
    else
        kind="$(_offgrid_table args "$cmdpath")"
    fi
    case "$kind" in
        file) _files ;;
        dynamic)
            candidates=( ${{(f)"$(env COMP_WORDS="${{words[1,CURRENT]}}" COMP_CWORD=$(( CURRENT - 1 )) \
                {var}=complete_bash offgrid 2>/dev/null)"}} )
            compadd -- $candidates ;;
        choice\ *) candidates=( ${{=kind#choice }} ); compadd -- $candidates ;;
    esac
}}

if [[ "$funcstack[1]" == "_offgrid" ]]; then
    _offgrid "$@"
else
    compdef _offgrid offgrid
fi
'''

FISH = r'''# {header}; do not edit.
# Goes to ~/.config/fish/completions/offgrid.fish (or `offgrid completion install fish`).

function __offgrid_table
    switch "$argv[1]:$argv[2]"
{fish_cases}
    end
end

function __offgrid_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmdpath ""
    set -l skip 0
    for word in $words[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        if contains -- $word (string split " " -- (__offgrid_table valued "$cmdpath"))
            set skip 1
        else if contains -- $word (string split " " -- (__offgrid_table subs "$cmdpath"))
            set cmdpath (string trim -- "$cmdpath $word")
        end
    end
    set -l kind
    set -l subs (__offgrid_table subs "$cmdpath")
    if test $skip = 1
        set kind (__offgrid_table kinds (string trim -- "$cmdpath $words[-1]"))
    else if string match -q -- "-*" "$cur"
        string split " " -- (__offgrid_table opts "$cmdpath")
        return
    else if test -n "$subs"
        string split " " -- $subs
        return
    else
        set kind (__offgrid_table args "$cmdpath")
    end
    switch "$kind"
        case file
            __fish_complete_path "$cur"
        case dynamic
            env COMP_WORDS="$words $cur" COMP_CWORD=(count $words) \
                {var}=complete_bash offgrid 2>/dev/null
        case "choice *"
            string split " " -- (string replace "choice " "" -- "$kind")
    end
end

complete -c offgrid -f -a "(__offgrid_complete)"
'''


def _fish_cases(tables: dict[str, dict[str, str]]) -> str:
    lines = []
    for table, rows in tables.items():
        for key, value in rows.items():
            if value:
                lines.append(f'        case "{table}:{key}"\n            echo "{value}"')
    return "\n".join(lines)


def script(shell: str, tree: list[Command] | None = None) -> str:
    """The completion script for *shell* (bash, zsh or fish)."""
    tables = _tables(tree if tree is not None else command_tree())
    if shell == "fish":
        return FISH.format(header=HEADER, var=COMPLETE_VAR, fish_cases=_fish_cases(tables))
    cases = {name: "\n".join(_case_lines(rows)) for name, rows in tables.items()}
    shared = SH_TABLES.format(**cases)
    template = {"bash": BASH, "zsh": ZSH}[shell]
    return template.format(header=HEADER, var=COMPLETE_VAR, tables=shared)


FILE_NAMES = {"bash": "offgrid.bash", "zsh": "_offgrid", "fish": "offgrid.fish"}


def install_target(shell: str) -> tuple[Path, Path | None, str | None]:
    """Where *shell* loads completions from: (script path, rc file to edit or None, rc line)."""
    home = Path.home()
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    if shell == "bash":
        target = data / "bash-completion" / "completions" / "offgrid"
        return target, home / ".bashrc", f"[ -f {target} ] && . {target}  # offgrid completion"
    if shell == "zsh":
        return (home / ".zfunc" / "_offgrid", home / ".zshrc",
                "fpath+=~/.zfunc; autoload -Uz compinit; compinit  # offgrid completion")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return config / "fish" / "completions" / "offgrid.fish", None, None


@dataclass
class Installed:
    path: Path
    action: str  # "installed" | "updated" | "unchanged"
    rc_file: Path | None = None


def install(shell: str, *, force: bool = False) -> Installed:
    """Write the script where *shell* finds it; never replace a file that is not ours unless
    forced; add the loading line to the rc file only when it is not there yet."""
    from offgrid.errors import UsageError

    target, rc_file, rc_line = install_target(shell)
    text = script(shell)
    action = "installed"
    if target.exists():
        current = target.read_text(encoding="utf-8", errors="replace")
        if current == text:
            action = "unchanged"
        elif HEADER in current or force:
            action = "updated"
        else:
            raise UsageError(f"{target} exists and was not written by offgrid",
                             hint="pass --force to replace it")
    if action != "unchanged":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    edited = None
    if rc_file is not None and rc_line is not None:
        existing = rc_file.read_text(encoding="utf-8") if rc_file.exists() else ""
        if rc_line not in existing:
            with rc_file.open("a", encoding="utf-8") as fh:
                fh.write(("" if existing.endswith("\n") or not existing else "\n") + rc_line + "\n")
            edited = rc_file
    return Installed(target, action, edited)


def detect_shell() -> str | None:
    name = Path(os.environ.get("SHELL", "")).name
    return name if name in SHELLS else None
