#!/usr/bin/env bash
# Arithmetic: for ((...)), (( )), $(( )), let.
for ((i = 0; i < 3; i++)); do
    echo "i=$i"
done
for (( j=10 ; j>7 ; j-=1 )) ; do echo "j=$j" ; done
x=5
(( x++ ))
(( y = x * 2, z = y % 7 ))
echo "$x $y $z $(( (x + 1) * (y - 2) )) $(( 2**10 )) $(( 0x1f ))"
let "w = x << 2" v=3+4
echo "$w $v"
if (( x > 3 )); then echo big; fi
(( 0 )) || echo "zero is false"
echo $(( $(echo 3) + $((4)) ))
n=0; while (( n < 3 )); do (( n++ )); done; echo "n=$n"
( (echo nested subshells) )
echo $((1+2)) $[3*4]
