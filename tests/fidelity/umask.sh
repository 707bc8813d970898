#!/usr/bin/env bash
# umask carries.
umask 027
touch f
mkdir d
stat -c '%a %n' f d
umask
umask -S
