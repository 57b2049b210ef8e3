# Shell helpers the bench scripts share (sourced, not run).

# json_field JSON TEST KEY: a number from burrow-bench --json output.
json_field() {
    printf '%s' "$1" | tr '{' '\n' | grep "\"test\":\"$2\"" | tr ',' '\n' | grep "\"$3\":" | head -1 | cut -d: -f2
}

# median of the numbers on stdin.
median() {
    sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print v[(NR+1)/2]} else {printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}}'
}
