#!/usr/bin/env bash
# cd, cd -, OLDPWD, pushd/popd/dirs.
mkdir -p a/b c
cd a
cd b
echo "${PWD##*/} ${OLDPWD##*/}"
cd -
cd - > /dev/null
echo "now in ${PWD##*/}"
cd ../..
pushd c > /dev/null
pushd ../a > /dev/null
dirs | sed "s|$HOME|~|g; s|$(cd .. && pwd)|ROOT|g"
popd > /dev/null
echo "after popd: ${PWD##*/}"
popd > /dev/null
echo "after second popd: ${PWD##*/}"
popd 2>&1 | sed 's/^.*popd/popd/'
