# bash completion for etcdpki, on urfave/cli v2's protocol (its
# autocomplete/bash_autocomplete): etcdpki, given the words typed so far
# and --generate-bash-completion, prints the candidates.
#
#   source <(etcdpki completion bash)                          # this shell
#   etcdpki completion bash > /etc/bash_completion.d/etcdpki   # every shell
#
# Unlike urfave's script it works without the bash-completion package, and
# runs the typed words as arguments rather than through eval.

_etcdpki_complete() {
  local cur words cword opts
  COMPREPLY=()
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n "=:" || return
  else
    cur="${COMP_WORDS[COMP_CWORD]}"
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  words=("${words[@]:0:$cword}")
  if [[ "$cur" == "-"* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}

complete -o bashdefault -o default -F _etcdpki_complete etcdpki
