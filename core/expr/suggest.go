package expr

// Suggest returns the candidate closest to name when it is close enough
// to be a likely typo (an edit distance of at most 2 or a third of the
// name's length, whichever is more, and less than the name's length),
// else "".
func Suggest(name string, candidates []string) string {
	best, bestDist := "", max(2, len(name)/3)+1
	for _, c := range candidates {
		if d := distance(name, c); d < bestDist && d < len(name) && d > 0 {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	if len(a) > 256 || len(b) > 256 {
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
