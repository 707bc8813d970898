#!/usr/bin/env bash
# A select menu reading its choices from standard input.
PS3="choose: "
select fruit in apple banana cherry quit; do
    case $fruit in
        quit) echo "bye"; break ;;
        "") echo "invalid choice: $REPLY" ;;
        *) echo "you chose $fruit ($REPLY)" ;;
    esac
done
read -r rest
echo "then read: $rest"
