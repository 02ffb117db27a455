// The oracle for src/settings.rs: every line on stdin is "TYPE<TAB>TEXT", and the answer on
// stdout is what spf13/pflag's Set of that flag type makes of TEXT ("ok<TAB>VALUE" or "err"),
// with VALUE printed the way the Rust side prints it: a duration through time.Duration.String,
// a list as its fields joined by U+001F. Shares nothing with the Rust code but the format.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		ty, text, _ := strings.Cut(in.Text(), "\t")
		text = strings.ReplaceAll(text, "\\n", "\n")
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		var (
			b   bool
			i32 int32
			i64 int64
			d   time.Duration
			ss  []string
		)
		fs.BoolVar(&b, "bool", false, "")
		fs.Int32Var(&i32, "int32", 0, "")
		fs.Int64Var(&i64, "int64", 0, "")
		fs.DurationVar(&d, "duration", 0, "")
		fs.StringSliceVar(&ss, "stringSlice", nil, "")
		if err := fs.Set(ty, text); err != nil {
			fmt.Fprintln(out, "err")
			continue
		}
		switch ty {
		case "bool":
			fmt.Fprintf(out, "ok\t%v\n", b)
		case "int32":
			fmt.Fprintf(out, "ok\t%d\n", i32)
		case "int64":
			fmt.Fprintf(out, "ok\t%d\n", i64)
		case "duration":
			fmt.Fprintf(out, "ok\t%s\n", d.String())
		case "stringSlice":
			fmt.Fprintf(out, "ok\t%s\n", strings.Join(ss, "\x1f"))
		}
	}
}
