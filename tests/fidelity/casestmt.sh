#!/usr/bin/env bash
# case statements over multiple lines, with fall-through.
for word in apple Banana 42 "two words" ""; do
    case $word in
        [aA]*) echo "$word starts with a" ;;
        [[:upper:]]*)
            echo "$word is capitalised"
            ;;
        *[0-9]*) echo "$word has digits" ;&
        4*) echo "  (fell through)" ;;
        *\ *) echo "'$word' has a space" ;;
        '') echo "empty" ;;
    esac
done
case x in
x) echo ";;& test" ;;&
*) echo "also matched" ;;
esac
