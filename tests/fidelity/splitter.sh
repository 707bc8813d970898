#!/usr/bin/env bash
# Constructs a second grammar easily gets wrong.
x=$( (echo nested) )
y=$((1 + $(echo 2)))
echo "$x $y"
case $x in (nested) echo "paren pattern";; esac
z=$(case a in a) echo in-case;; esac)
echo "$z"
echo $(echo ")") "(" ')' "#" \# a#b
[[ $x =~ ^(nes|x)ted$ ]] && echo "regex ${BASH_REMATCH[1]}"
arr=( $(echo a b) "c d" )
echo "${#arr[@]}"
echo "a" \
  "b"   # comment after continuation
if [[ -n $x ]]
then
  echo "then on its own line"
fi
while false
do
  :
done
f()
{
  echo "brace on next line"
}
f
cat <<< "here string"
echo ${x//e/E} ${x:+set} ${x%%t*} "${x/#n/N}"
echo $'a\'b' "q\"q" 'single'"double" $"locale"
{ echo group1; echo group2; } | sort -r
echo `echo \`echo inner\``
echo "$(echo "quotes \"inside\" $(echo deeper)")"
v=1; ((v++)); echo $v
for i in 1 2; do (( i == 2 )) && echo "two"; done
echo done # final
