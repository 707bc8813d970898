#!/usr/bin/env bash
# Here-documents with unusual delimiters.
name=world
cat <<EOF
hello $name
EOF
cat <<'E O F'
quoted $name
E O F
cat <<"END"
double $name
END
cat <<-	TABS
	tab-stripped $name
	TABS
cat <<E\OF
escaped $name
EOF
cat <<!
bang $name
!
cat <<__END__ | tr a-z A-Z
piped $name
__END__
cat <<A; cat <<B
first
A
second
B
f() {
    cat <<-X
	in function $1
	X
}
f arg
x=$(cat <<Y
inside substitution
Y
)
echo "$x"
cat <<'EOF)'
paren delimiter
EOF)
cat <<EOF
$(echo nested) and `echo backquoted`
EOF
cat <<EOF
EOF
echo "empty body above"
cat <<"a'b"
mixed quotes
a'b
echo after
