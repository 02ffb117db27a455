// The oracle for config/yaml.rs's scalar resolution: every line on stdin is a plain YAML
// scalar; the answer is the JSON type sigs.k8s.io/yaml (over yaml.v2, as the kubelet reads a
// config) gives it as the value of a key: null, true, false, number, string, or err.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		j, err := yaml.YAMLToJSON([]byte("k: " + in.Text() + "\n"))
		if err != nil {
			fmt.Fprintln(out, "err")
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(j, &m); err != nil {
			fmt.Fprintln(out, "err")
			continue
		}
		var v interface{}
		_ = json.Unmarshal(m["k"], &v)
		switch x := v.(type) {
		case nil:
			fmt.Fprintln(out, "null")
		case bool:
			fmt.Fprintln(out, x)
		case float64:
			fmt.Fprintln(out, "number")
		case string:
			fmt.Fprintln(out, "string")
		default:
			fmt.Fprintln(out, "other")
		}
	}
}
