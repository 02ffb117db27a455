// A stand-in kubelet built on the libraries the kubelet itself parses with (spf13/pflag,
// sigs.k8s.io/yaml over yaml.v2, sigs.k8s.io/json, evanphx/json-patch), following
// cmd/kubelet/app/server.go: parse the flags, refuse leftover words ("unknown command"), load
// --config (strict, then lenient), merge --config-dir drop-ins (marshal the internal
// configuration, JSON merge patch each drop-in, unmarshal with encoding/json), then let the
// command line win. It reports makeIPTablesUtilChains, or why the kubelet would refuse to start.
//
// It is written separately from the Rust planner on purpose: the tests compare the two.
// The only thing they share is data: flags.txt, the kubelet's flag names (copied next to this
// file when it is built).
//
// Two modes:
//   - STAND_IN_ROOT=DIR: chroot into DIR (chdir STAND_IN_CWD, default /), judge os.Args, print
//     the result as JSON on stdout, exit 0. Used by the differential tests.
//   - otherwise (under a sandboxed systemd): write the result to
//     /run/stand-in-kubelet/result.json, then exit 1 if the kubelet would refuse, else publish
//     configz.json and wait to be stopped.
package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	jsonpatch "github.com/evanphx/json-patch"
	"github.com/spf13/pflag"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

//go:embed flags.txt
var flagList string

const flagName = "make-iptables-util-chains"

type result struct {
	Argv    []string `json:"argv"`
	Kubelet bool     `json:"kubelet"`
	Value   *bool    `json:"value"`
	Refused string   `json:"refused"`
}

// The versioned type's fields the stand-in needs (case-sensitive, as the v1beta1 decoder).
type versioned struct {
	Kind                   string `json:"kind"`
	APIVersion             string `json:"apiVersion"`
	MakeIPTablesUtilChains *bool  `json:"makeIPTablesUtilChains"`
}

// The internal type: no json tags, so encoding/json uses the Go field name and matches keys
// case-insensitively when decoding (pkg/kubelet/apis/config/types.go).
type internal struct {
	MakeIPTablesUtilChains bool
}

// cliflag.WordSepNormalizeFunc
func wordSep(f *pflag.FlagSet, name string) pflag.NormalizedName {
	if strings.Contains(name, "_") {
		return pflag.NormalizedName(strings.Replace(name, "_", "-", -1))
	}
	return pflag.NormalizedName(name)
}

func newFlagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubelet", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(wordSep)
	for _, line := range strings.Split(flagList, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(line, "#") {
			continue
		}
		short := ""
		switch f[1] {
		case "v":
			short = "v"
		case "help":
			short = "h"
		}
		// The real pflag type where the list names one (the settings table's flags), so a
		// value that type cannot parse stops the parse as it stops the kubelet.
		switch f[0] {
		case "bool":
			fs.BoolP(f[1], short, false, "")
		case "int32":
			fs.Int32P(f[1], short, 0, "")
		case "int64":
			fs.Int64P(f[1], short, 0, "")
		case "duration":
			fs.DurationP(f[1], short, 0, "")
		case "stringSlice":
			fs.StringSliceP(f[1], short, nil, "")
		case "mapStringBool":
			fs.VarP(mapStringBool{}, f[1], short, "")
		default:
			fs.StringP(f[1], short, "", "")
		}
	}
	return fs
}

// component-base cli/flag MapStringBool (not packaged by Debian): the same Set, for
// --feature-gates.
type mapStringBool map[string]bool

func (m mapStringBool) String() string { return "" }
func (m mapStringBool) Type() string   { return "mapStringBool" }
func (m mapStringBool) Set(value string) error {
	for _, s := range strings.Split(value, ",") {
		if len(s) == 0 {
			continue
		}
		arr := strings.SplitN(s, "=", 2)
		if len(arr) != 2 {
			return fmt.Errorf("malformed pair, expect string=bool")
		}
		k := strings.TrimSpace(arr[0])
		v := strings.TrimSpace(arr[1])
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("invalid value of %s: %s, err: %v", k, v, err)
		}
		m[k] = b
	}
	return nil
}

// loadConfigFile: DecodeKubeletConfiguration, strict first, then lenient.
func loadConfigFile(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	js, err := toJSON(data, true)
	if err != nil {
		// Strict decoding failed (duplicate keys): the lenient decoder tries again.
		js, err = toJSON(data, false)
		if err != nil {
			return false, err
		}
	}
	var v versioned
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &v); err != nil {
		return false, err
	}
	if v.Kind == "" || v.APIVersion == "" {
		return false, errors.New("Object 'Kind' is missing")
	}
	if v.MakeIPTablesUtilChains == nil {
		return true, nil // defaults.go: true
	}
	return *v.MakeIPTablesUtilChains, nil
}

// The serializer: JSON is recognised by its first byte, anything else is YAML.
func toJSON(data []byte, strict bool) ([]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte("{")) {
		if strict {
			var m map[string]interface{}
			errs, err := sigsjson.UnmarshalStrict(data, &m)
			if err != nil {
				return nil, err
			}
			for _, e := range errs {
				if strings.Contains(e.Error(), "duplicate field") {
					return nil, e
				}
			}
		}
		return data, nil
	}
	if strict {
		return yaml.YAMLToJSONStrict(data)
	}
	return yaml.YAMLToJSON(data)
}

// loadDropinConfigFileIntoJSON: strict decoding into an Unstructured object, no fallback.
func loadDropin(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := toJSON(data, true)
	if err != nil {
		return nil, err
	}
	var obj map[string]interface{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("not an object")
	}
	for _, k := range []string{"kind", "apiVersion"} {
		if s, ok := obj[k].(string); !ok || s == "" {
			return nil, fmt.Errorf("Object '%s' is missing", k)
		}
	}
	return json.Marshal(obj)
}

// mergeKubeletConfigurations
func mergeDropins(base bool, dir string) (bool, error) {
	cfg := internal{MakeIPTablesUtilChains: base}
	baseJSON, err := json.Marshal(cfg)
	if err != nil {
		return false, err
	}
	err = filepath.WalkDir(dir, func(path string, info fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() && filepath.Ext(info.Name()) == ".conf" {
			dropin, err := loadDropin(path)
			if err != nil {
				return fmt.Errorf("failed to load kubelet dropin file, path: %s, error: %w", path, err)
			}
			merged, err := jsonpatch.MergePatch(baseJSON, dropin)
			if err != nil {
				return fmt.Errorf("failed to merge kubelet drop-in configs for file: %s, error: %w", path, err)
			}
			baseJSON = merged
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(baseJSON, &cfg); err != nil {
		return false, fmt.Errorf("failed to unmarshal merged JSON into kubelet configuration: %w", err)
	}
	return cfg.MakeIPTablesUtilChains, nil
}

func judge(args []string) (bool, error) {
	fs := newFlagSet()
	if err := fs.Parse(args); err != nil {
		return false, fmt.Errorf("failed to parse kubelet flag: %w", err)
	}
	if cmds := fs.Args(); len(cmds) > 0 {
		return false, fmt.Errorf("unknown command %+s", cmds[0])
	}
	for _, exits := range []string{"help", "version"} {
		if fs.Changed(exits) {
			return false, fmt.Errorf("--%s: the kubelet prints and exits", exits)
		}
	}
	value := true
	if p, _ := fs.GetString("config"); p != "" {
		v, err := loadConfigFile(p)
		if err != nil {
			return false, fmt.Errorf("failed to load Kubelet config file %s: %w", p, err)
		}
		value = v
	}
	if d, _ := fs.GetString("config-dir"); d != "" {
		v, err := mergeDropins(value, d)
		if err != nil {
			return false, err
		}
		value = v
	}
	// kubeletConfigFlagPrecedence: the command line is parsed again over the merged config.
	if fs.Changed(flagName) {
		value, _ = fs.GetBool(flagName)
	}
	return value, nil
}

// publish writes a file whole (temp file, then rename), so a reader never sees half of it.
func publish(name string, data []byte) {
	tmp := "/run/stand-in-kubelet/." + name + ".tmp"
	if os.WriteFile(tmp, data, 0o644) == nil {
		_ = os.Rename(tmp, "/run/stand-in-kubelet/"+name)
	}
}

func main() {
	r := result{Argv: os.Args}
	root := os.Getenv("STAND_IN_ROOT")
	if root != "" {
		if err := syscall.Chroot(root); err != nil {
			fmt.Fprintln(os.Stderr, "chroot:", err)
			os.Exit(3)
		}
		cwd := os.Getenv("STAND_IN_CWD")
		if cwd == "" {
			cwd = "/"
		}
		if err := os.Chdir(cwd); err != nil {
			fmt.Fprintln(os.Stderr, "chdir:", err)
			os.Exit(3)
		}
	}
	args := os.Args[1:]
	base := filepath.Base(os.Args[0])
	if base == "kubenswrapper" && len(args) > 0 {
		// OpenShift's wrapper execs its first argument with the rest.
		base = filepath.Base(args[0])
		args = args[1:]
	}
	r.Kubelet = base == "kubelet"
	if r.Kubelet {
		v, err := judge(args)
		if err != nil {
			r.Refused = err.Error()
		} else {
			r.Value = &v
		}
	}
	out, _ := json.Marshal(r)
	if root != "" {
		os.Stdout.Write(append(out, '\n'))
		return
	}
	_ = os.MkdirAll("/run/stand-in-kubelet", 0o755)
	publish("result.json", out)
	if r.Refused != "" {
		fmt.Fprintln(os.Stderr, "stand-in kubelet:", r.Refused)
		os.Exit(1)
	}
	if r.Value != nil {
		cz, _ := json.Marshal(map[string]interface{}{"kubeletconfig": map[string]bool{"makeIPTablesUtilChains": *r.Value}})
		publish("configz.json", cz)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
