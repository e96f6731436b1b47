// Command herald-bench runs Herald's benchmarks against a real PostgreSQL and
// prints each result beside a baseline measured in the same run, since
// absolute numbers drift between machines.
//
//	herald-bench [-rows 1000000] [-messages 100000] [-devices 1000000] [-conc 256] [import] [delivery] [memory] [campaign] [conversation]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/herald-im/herald/database/dbtest"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "CSV rows for the import benchmark")
	messages := flag.Int("messages", 100_000, "messages per provider and sender in the delivery benchmark")
	conc := flag.Int("conc", 256, "requests in flight")
	child := flag.Int("child-messages", 0, "internal: run the memory benchmark's child")
	simChild := flag.Bool("simulator-child", false, "internal: run the simulator for the campaign benchmark")
	devices := flag.Int("devices", 1_000_000, "devices in the campaign benchmark")
	platforms := flag.String("platforms", "apns,fcm,webpush", "providers for the delivery benchmark")
	inboundRate := flag.Int("inbound-rate", 2000, "inbound messages per second in the conversation benchmark")
	inboundSeconds := flag.Int("inbound-seconds", 30, "how long the conversation benchmark's inbound load lasts")
	chatDevices := flag.Int("conversation-devices", 100_000, "devices of the campaign sending during the conversation benchmark")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *simChild {
		if err := simulatorChild(); err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			os.Exit(1)
		}
		return
	}
	if *child > 0 {
		if err := memoryChild(*child, *conc); err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			os.Exit(1)
		}
		return
	}
	which := flag.Args()
	if len(which) == 0 {
		which = []string{"import", "delivery", "memory", "campaign", "conversation"}
	}
	ctx := context.Background()
	base := strings.TrimSuffix(dbtest.URL(), "?sslmode=disable")
	base = base[:strings.LastIndex(base, "/")]
	for _, w := range which {
		var err error
		switch w {
		case "import":
			err = benchImport(ctx, base+"/herald_bench?sslmode=disable", *rows)
		case "delivery":
			err = benchDelivery(ctx, *messages, *conc, strings.Split(*platforms, ","))
		case "memory":
			err = benchMemory(*conc)
		case "conversation":
			err = benchConversation(ctx, base+"/herald_bench_conversation?sslmode=disable", *chatDevices, *inboundRate, *inboundSeconds, *conc)
		case "campaign":
			err = benchCampaign(ctx, base+"/herald_bench_campaign?sslmode=disable", *devices, *conc)
		default:
			err = fmt.Errorf("unknown benchmark %q", w)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "herald-bench:", err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
	}
}
