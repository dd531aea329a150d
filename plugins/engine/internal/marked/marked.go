// Package marked stops the processes of one command that runs inside a
// job's container or allocation, where the engine has no process tree of
// its own to stop: every process of the command carries a marker in its
// environment (children inherit it, daemonized or not), and a small sh
// script finds them through /proc and signals them, the technique of
// Jenkins's ProcessTreeKiller. A process that clears its environment
// escapes it; the engines stop what is left with the job's container.
package marked

// Sweep is sh code that sends signal (a number or a name, or a shell
// expression for one) to every process whose environment holds marker (a
// fixed string, or a shell expression for one), except the shell that
// runs it. Its variables begin with an underscore. The marker is matched
// as a basic regular expression, so it must hold only letters, digits,
// '_', '=' and '-': busybox's grep -F compares only up to a line's first
// NUL, which in /proc/PID/environ is the end of the first variable.
//
// One look at /proc is not enough: a process in the middle of an exec
// shows an empty environment for a moment, and one forked after the look
// is not in it (a setsid child so missed outlived its command). So it
// looks again until a look finds no process it has not signalled yet, at
// least twice and at most twenty times, and signals each process once (a
// second SIGTERM means "stop now" to some programs, Terraform among them).
// Zombies have an empty environment and are left to their parents.
func Sweep(signal, marker string) string {
	return `_g=` + signal + ` _m=` + marker + `
_s=' ' _n=0
while [ "$_n" -lt 20 ]; do
  _n=$((_n+1)) _new=
  for _f in $(grep -l -- "$_m" /proc/[0-9]*/environ 2>/dev/null); do
    _p=${_f#/proc/}; _p=${_p%/environ}
    case "$_s" in *" $_p "*) continue ;; esac
    if [ "$_p" != "$$" ] && kill -"$_g" "$_p" 2>/dev/null; then _s="$_s$_p " _new=1; fi
  done
  [ -n "$_new" ] || [ "$_n" -lt 2 ] || break
done`
}
