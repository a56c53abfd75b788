#compdef etcdpki
# zsh completion for etcdpki, urfave/cli v2's autocomplete/zsh_autocomplete
# for this one program: etcdpki, given the words typed so far and
# --generate-bash-completion, prints the candidates. After compinit:
#
#   source <(etcdpki completion zsh)

_etcdpki_complete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _etcdpki_complete etcdpki
