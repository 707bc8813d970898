#!/usr/bin/env bash
# Quoting and expansion forms.
s='it'"'"'s'
echo "$s" $'tab:\there' "dollar:\$HOME" 'single $HOME'
path=/usr/local/bin/tool.tar.gz
echo "${path##*/} ${path%%.*} ${path#*/} ${path%.gz} ${path/local/LOCAL} ${path//o/0}"
echo "${#path} ${path:5:5} ${path: -6} ${path^^} ${undefined:-fallback} ${undefined:=set}"
echo "${undefined}"
echo a#b "# not a comment" # a comment with 'quotes" and `ticks
echo `echo back` $(echo "nested $(echo "deep")")
case "x)y" in
    "x)y") echo "case with paren" ;;
    *) echo no ;;
esac
echo $(case a in a) echo "case in substitution";; esac)
echo "multi
line string"
echo one \
     two \
     three
arr=(a b "c d")
echo "${arr[@]:1}" "${#arr[@]}" "${!arr[@]}"
printf '%s|' "${arr[@]}"; echo
echo {a,b}{1,2} {1..5} {a..e..2}
echo ~ | sed "s|$HOME|HOME|"
v="a  b   c"
echo $v "$v"
IFS=: read -r p q <<< "left:right"
echo "$p $q"
echo "${!path*}"
