package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/palvella/palvella/core/api/wire"
	"github.com/palvella/palvella/core/client"
)

// startWorkers starts n `palvella worker` processes for the server at
// addr, each running up to 8 jobs at once, and returns their PIDs.
func startWorkers(b *testing.B, c *client.Client, addr string, n int) []int {
	bin := os.Getenv("PALVELLA_BIN")
	tok, err := c.CreateToken(context.Background(), wire.TokenRequest{Name: fmt.Sprintf("bench-workers-%d", time.Now().UnixNano()), Roles: []string{"worker"}})
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for i := range n {
		home, err := os.MkdirTemp("", "palvella-bench-worker-")
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, "worker", "--server", "http://"+addr, "--token", tok.Token,
			"--name", fmt.Sprintf("w%d", i), "--workers", "8", "--log-level", "warn", "--shutdown-grace", "1s")
		cmd.Env = append(os.Environ(), "PALVELLA_HOME="+home)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = os.RemoveAll(home)
		})
		pids = append(pids, cmd.Process.Pid)
	}
	return pids
}

// treeCPU is the CPU time (user and system) of the processes pids and of
// their descendants, live or waited for, read from /proc.
func treeCPU(pids []int) time.Duration {
	tick := 100.0 // USER_HZ on Linux
	parents := map[int]int{}
	times := map[int]float64{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var sum float64
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			v, _ := strconv.ParseFloat(f[i], 64)
			sum += v
		}
		parents[pid], times[pid] = ppid, sum
	}
	roots := map[int]bool{}
	for _, p := range pids {
		roots[p] = true
	}
	under := func(pid int) bool {
		for i := 0; i < 64 && pid > 1; i++ {
			if roots[pid] {
				return true
			}
			pid = parents[pid]
		}
		return false
	}
	var total float64
	for pid, t := range times {
		if under(pid) {
			total += t
		}
	}
	return time.Duration(total / tick * float64(time.Second))
}

// throughput runs trivial runs from 16 clients for about d and returns
// the runs completed per second.
func throughput(b *testing.B, c *client.Client, runs int) float64 {
	ctx := context.Background()
	const clients = 16
	per := (runs + clients - 1) / clients
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			for range per {
				if err := runAndWait(ctx, c); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	return float64(per*clients) / time.Since(start).Seconds()
}

// BenchmarkRemoteWorkers is trivial runs per second from 16 clients, and
// the CPU each run took in the server, its workers and their plugins (and
// apart, in PostgreSQL), on
// one server on PostgreSQL (--no-worker) with 1, 2 and 4 `palvella
// worker` processes, next to one sqlite server with its embedded worker
// (the default set-up), measured in the same benchmark. Each iteration
// is 96 runs per set-up.
func BenchmarkRemoteWorkers(b *testing.B) {
	type setup struct {
		name string
		c    *client.Client
		pids []int
		db   []int // the database server's, when it is a process of its own
		srv  []int // the server's alone, when workers are processes of their own
	}
	var setups []setup
	{
		c, home := scaleServer(b, "--workers", "8")
		apply(b, c, trivialPipeline)
		setups = append(setups, setup{"sqlite-embedded", c, []int{serverPIDs[home]}, nil, nil})
	}
	for _, n := range []int{1, 2, 4} {
		fleet, addrs := pgFleetAddrs(b, 1, "--no-worker")
		pids := append(startWorkers(b, fleet[0].c, addrs[0], n), fleetPIDs[addrs[0]])
		setups = append(setups, setup{fmt.Sprintf("pg-%dworkers", n), fleet[0].c, pids, []int{postmasterPID(b, fleetPG[addrs[0]])}, []int{fleetPIDs[addrs[0]]}})
	}
	ctx := context.Background()
	for _, s := range setups { // plugins launched, workers connected
		if err := runAndWait(ctx, s.c); err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
	}
	rate := map[string][]float64{}
	cpu := map[string]time.Duration{}
	dbCPU := map[string]time.Duration{}
	srvCPU := map[string]time.Duration{}
	runs := map[string]int{}
	for b.Loop() {
		for _, s := range setups {
			before, dbBefore, srvBefore := treeCPU(s.pids), treeCPU(s.db), treeCPU(s.srv)
			rate[s.name] = append(rate[s.name], throughput(b, s.c, 96))
			cpu[s.name] += treeCPU(s.pids) - before
			dbCPU[s.name] += treeCPU(s.db) - dbBefore
			srvCPU[s.name] += treeCPU(s.srv) - srvBefore
			runs[s.name] += 96
		}
	}
	for _, s := range setups {
		r := rate[s.name]
		var sum float64
		for _, x := range r {
			sum += x
		}
		b.ReportMetric(sum/float64(len(r)), s.name+"-runs/s")
		b.ReportMetric(float64(cpu[s.name].Milliseconds())/float64(runs[s.name]), s.name+"-cpu-ms/run")
		if s.db != nil {
			b.ReportMetric(float64(dbCPU[s.name].Milliseconds())/float64(runs[s.name]), s.name+"-postgres-cpu-ms/run")
		}
		if s.srv != nil {
			b.ReportMetric(float64(srvCPU[s.name].Milliseconds())/float64(runs[s.name]), s.name+"-server-cpu-ms/run")
		}
	}
}
