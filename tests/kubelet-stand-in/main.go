// A stand-in kubelet built on the libraries the kubelet itself parses with (spf13/pflag,
// sigs.k8s.io/yaml over yaml.v2, sigs.k8s.io/json, evanphx/json-patch), following
// cmd/kubelet/app/server.go: parse the flags, refuse leftover words ("unknown command"), load
// --config (strict, then lenient), merge --config-dir drop-ins (marshal the internal
// configuration, JSON merge patch each drop-in, unmarshal with encoding/json), then let the
// command line win. It reports every setting of the settings table (src/settings.rs) and
// makeIPTablesUtilChains on its own, or why the kubelet would refuse to start.
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
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
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
	"time"

	jsonpatch "github.com/evanphx/json-patch"
	"github.com/spf13/pflag"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

//go:embed flags.txt
var flagList string

type result struct {
	Argv     []string               `json:"argv"`
	Kubelet  bool                   `json:"kubelet"`
	Value    *bool                  `json:"value"`
	Settings map[string]interface{} `json:"settings"`
	Refused  string                 `json:"refused"`
	// InitializeTLS: a set clientCAFile that certutil.NewPool cannot load stops the kubelet.
	ClientCAError string `json:"client_ca_error"`
}

// metav1.Duration: a JSON string through time.ParseDuration (null reads as "" and fails).
type duration struct{ time.Duration }

func (d *duration) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	pd, err := time.ParseDuration(str)
	if err != nil {
		return err
	}
	d.Duration = pd
	return nil
}

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

// The versioned type's fields the stand-in needs (case-sensitive, as the v1beta1 decoder),
// with their Go shapes (staging/src/k8s.io/kubelet/config/v1beta1/types.go).
type versioned struct {
	Kind           string `json:"kind"`
	APIVersion     string `json:"apiVersion"`
	Authentication struct {
		X509 struct {
			ClientCAFile string `json:"clientCAFile"`
		} `json:"x509"`
		Webhook struct {
			Enabled *bool `json:"enabled"`
		} `json:"webhook"`
		Anonymous struct {
			Enabled *bool `json:"enabled"`
		} `json:"anonymous"`
	} `json:"authentication"`
	Authorization struct {
		Mode string `json:"mode"`
	} `json:"authorization"`
	ReadOnlyPort                   int32           `json:"readOnlyPort"`
	StreamingConnectionIdleTimeout duration        `json:"streamingConnectionIdleTimeout"`
	MakeIPTablesUtilChains         *bool           `json:"makeIPTablesUtilChains"`
	EventRecordQPS                 *int32          `json:"eventRecordQPS"`
	TLSCertFile                    string          `json:"tlsCertFile"`
	TLSPrivateKeyFile              string          `json:"tlsPrivateKeyFile"`
	RotateCertificates             bool            `json:"rotateCertificates"`
	ServerTLSBootstrap             bool            `json:"serverTLSBootstrap"`
	FeatureGates                   map[string]bool `json:"featureGates"`
	TLSCipherSuites                []string        `json:"tlsCipherSuites"`
	PodPidsLimit                   *int64          `json:"podPidsLimit"`
	ProtectKernelDefaults          bool            `json:"protectKernelDefaults"`
	SeccompDefault                 *bool           `json:"seccompDefault"`
	HealthzBindAddress             string          `json:"healthzBindAddress"`
	HealthzPort                    *int32          `json:"healthzPort"`
}

// The internal type: no json tags, so encoding/json uses the Go field names and matches keys
// case-insensitively when decoding (pkg/kubelet/apis/config/types.go).
type internal struct {
	Authentication struct {
		X509      struct{ ClientCAFile string }
		Webhook   struct{ Enabled bool }
		Anonymous struct{ Enabled bool }
	}
	Authorization                  struct{ Mode string }
	ReadOnlyPort                   int32
	StreamingConnectionIdleTimeout duration
	MakeIPTablesUtilChains         bool
	EventRecordQPS                 int32
	TLSCertFile                    string
	TLSPrivateKeyFile              string
	RotateCertificates             bool
	ServerTLSBootstrap             bool
	FeatureGates                   map[string]bool
	TLSCipherSuites                []string
	PodPidsLimit                   int64
	ProtectKernelDefaults          bool
	SeccompDefault                 bool
	HealthzBindAddress             string
	HealthzPort                    int32
}

// The v1beta1 defaults (defaults.go), and without --config the four legacy ones
// (options.go applyLegacyDefaults).
func defaults(legacy bool) internal {
	var c internal
	c.Authentication.Webhook.Enabled = true
	c.Authorization.Mode = "Webhook"
	c.StreamingConnectionIdleTimeout.Duration = 4 * time.Hour
	c.MakeIPTablesUtilChains = true
	c.EventRecordQPS = 50
	c.PodPidsLimit = -1
	c.HealthzBindAddress = "127.0.0.1"
	c.HealthzPort = 10248
	if legacy {
		c.Authentication.Anonymous.Enabled = true
		c.Authentication.Webhook.Enabled = false
		c.Authorization.Mode = "AlwaysAllow"
		c.ReadOnlyPort = 10255
	}
	return c
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

// loadConfigFile: DecodeKubeletConfiguration, strict first, then lenient; defaulted as v1beta1;
// relative paths resolved against the file's directory (resolveRelativePaths).
func loadConfigFile(path string) (internal, error) {
	var c internal
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	js, err := toJSON(data, true)
	if err != nil {
		// Strict decoding failed (duplicate keys): the lenient decoder tries again.
		js, err = toJSON(data, false)
		if err != nil {
			return c, err
		}
	}
	var v versioned
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &v); err != nil {
		return c, err
	}
	if v.Kind == "" || v.APIVersion == "" {
		return c, errors.New("Object 'Kind' is missing")
	}
	d := defaults(false)
	c.Authentication.X509.ClientCAFile = v.Authentication.X509.ClientCAFile
	c.Authentication.Webhook.Enabled = deref(v.Authentication.Webhook.Enabled, d.Authentication.Webhook.Enabled)
	c.Authentication.Anonymous.Enabled = deref(v.Authentication.Anonymous.Enabled, false)
	c.Authorization.Mode = v.Authorization.Mode
	if c.Authorization.Mode == "" {
		c.Authorization.Mode = d.Authorization.Mode
	}
	c.ReadOnlyPort = v.ReadOnlyPort
	c.StreamingConnectionIdleTimeout = v.StreamingConnectionIdleTimeout
	if c.StreamingConnectionIdleTimeout.Duration == 0 {
		c.StreamingConnectionIdleTimeout = d.StreamingConnectionIdleTimeout
	}
	c.MakeIPTablesUtilChains = deref(v.MakeIPTablesUtilChains, true)
	c.EventRecordQPS = d.EventRecordQPS
	if v.EventRecordQPS != nil {
		c.EventRecordQPS = *v.EventRecordQPS
	}
	c.TLSCertFile = v.TLSCertFile
	c.TLSPrivateKeyFile = v.TLSPrivateKeyFile
	c.RotateCertificates = v.RotateCertificates
	c.ServerTLSBootstrap = v.ServerTLSBootstrap
	c.FeatureGates = v.FeatureGates
	c.TLSCipherSuites = v.TLSCipherSuites
	c.PodPidsLimit = -1
	if v.PodPidsLimit != nil && *v.PodPidsLimit >= 0 {
		c.PodPidsLimit = *v.PodPidsLimit
	}
	c.ProtectKernelDefaults = v.ProtectKernelDefaults
	c.SeccompDefault = deref(v.SeccompDefault, false)
	c.HealthzBindAddress = v.HealthzBindAddress
	if c.HealthzBindAddress == "" {
		c.HealthzBindAddress = d.HealthzBindAddress
	}
	c.HealthzPort = d.HealthzPort
	if v.HealthzPort != nil {
		c.HealthzPort = *v.HealthzPort
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Authentication.X509.ClientCAFile, &c.TLSCertFile, &c.TLSPrivateKeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p, _ = filepath.Abs(filepath.Join(dir, *p))
		}
	}
	return c, nil
}

func deref(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
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
func mergeDropins(cfg internal, dir string) (internal, error) {
	baseJSON, err := json.Marshal(cfg)
	if err != nil {
		return cfg, err
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
		return cfg, err
	}
	if err := json.Unmarshal(baseJSON, &cfg); err != nil {
		return cfg, fmt.Errorf("failed to unmarshal merged JSON into kubelet configuration: %w", err)
	}
	return cfg, nil
}

// The names cliflag.TLSCipherSuites accepts.
func cipherNames() map[string]bool {
	m := map[string]bool{
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":   true,
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": true,
	}
	for _, c := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[c.Name] = true
	}
	return m
}

func judge(args []string) (internal, bool, error) {
	var c internal
	fs := newFlagSet()
	if err := fs.Parse(args); err != nil {
		return c, false, fmt.Errorf("failed to parse kubelet flag: %w", err)
	}
	if cmds := fs.Args(); len(cmds) > 0 {
		return c, false, fmt.Errorf("unknown command %+s", cmds[0])
	}
	for _, exits := range []string{"help", "version"} {
		if fs.Changed(exits) {
			return c, false, fmt.Errorf("--%s: the kubelet prints and exits", exits)
		}
	}
	c = defaults(true)
	if p, _ := fs.GetString("config"); p != "" {
		v, err := loadConfigFile(p)
		if err != nil {
			return c, false, fmt.Errorf("failed to load Kubelet config file %s: %w", p, err)
		}
		c = v
	}
	if d, _ := fs.GetString("config-dir"); d != "" {
		v, err := mergeDropins(c, d)
		if err != nil {
			return c, false, err
		}
		c = v
	}
	// kubeletConfigFlagPrecedence: the command line is parsed again over the merged config.
	abs := func(p string) string {
		if p != "" && !filepath.IsAbs(p) {
			p, _ = filepath.Abs(p)
		}
		return p
	}
	set := map[string]func(){
		"anonymous-auth":               func() { c.Authentication.Anonymous.Enabled, _ = fs.GetBool("anonymous-auth") },
		"authentication-token-webhook": func() { c.Authentication.Webhook.Enabled, _ = fs.GetBool("authentication-token-webhook") },
		"authorization-mode":           func() { c.Authorization.Mode, _ = fs.GetString("authorization-mode") },
		"client-ca-file":               func() { v, _ := fs.GetString("client-ca-file"); c.Authentication.X509.ClientCAFile = abs(v) },
		"read-only-port":               func() { c.ReadOnlyPort, _ = fs.GetInt32("read-only-port") },
		"streaming-connection-idle-timeout": func() {
			c.StreamingConnectionIdleTimeout.Duration, _ = fs.GetDuration("streaming-connection-idle-timeout")
		},
		"make-iptables-util-chains":  func() { c.MakeIPTablesUtilChains, _ = fs.GetBool("make-iptables-util-chains") },
		"event-qps":                  func() { c.EventRecordQPS, _ = fs.GetInt32("event-qps") },
		"tls-cert-file":              func() { v, _ := fs.GetString("tls-cert-file"); c.TLSCertFile = abs(v) },
		"tls-private-key-file":       func() { v, _ := fs.GetString("tls-private-key-file"); c.TLSPrivateKeyFile = abs(v) },
		"rotate-certificates":        func() { c.RotateCertificates, _ = fs.GetBool("rotate-certificates") },
		"rotate-server-certificates": func() { c.ServerTLSBootstrap, _ = fs.GetBool("rotate-server-certificates") },
		"tls-cipher-suites":          func() { c.TLSCipherSuites, _ = fs.GetStringSlice("tls-cipher-suites") },
		"pod-max-pids":               func() { c.PodPidsLimit, _ = fs.GetInt64("pod-max-pids") },
		"protect-kernel-defaults":    func() { c.ProtectKernelDefaults, _ = fs.GetBool("protect-kernel-defaults") },
		"healthz-bind-address":       func() { c.HealthzBindAddress, _ = fs.GetString("healthz-bind-address") },
		"healthz-port":               func() { c.HealthzPort, _ = fs.GetInt32("healthz-port") },
		"feature-gates": func() {
			// The flag's gates win per key; the configuration's other gates stay.
			m := fs.Lookup("feature-gates").Value.(mapStringBool)
			if c.FeatureGates == nil {
				c.FeatureGates = map[string]bool{}
			}
			for k, v := range m {
				c.FeatureGates[k] = v
			}
		},
	}
	for name, f := range set {
		if fs.Changed(name) {
			f()
		}
	}
	seccompFlag, _ := fs.GetBool("seccomp-default")
	hostname, _ := fs.GetString("hostname-override")
	// What the kubelet refuses on the result (validation.go, BuildAuthz, InitializeTLS,
	// GetHostname).
	if c.ReadOnlyPort < 0 || c.ReadOnlyPort > 65535 {
		return c, false, fmt.Errorf("readOnlyPort (%d) must be between 0 and 65535, inclusive", c.ReadOnlyPort)
	}
	if c.HealthzPort < 0 || c.HealthzPort > 65535 {
		return c, false, fmt.Errorf("healthzPort (%d) must be between 0 and 65535, inclusive", c.HealthzPort)
	}
	if c.EventRecordQPS < 0 {
		return c, false, fmt.Errorf("eventRecordQPS (%d) must not be a negative number", c.EventRecordQPS)
	}
	if m := c.Authorization.Mode; m != "AlwaysAllow" && m != "Webhook" {
		return c, false, fmt.Errorf("unknown authorization mode %q", m)
	}
	if hostname != "" && strings.TrimSpace(hostname) == "" {
		return c, false, errors.New("empty hostname is invalid")
	}
	names := cipherNames()
	for _, n := range c.TLSCipherSuites {
		if !names[n] {
			return c, false, fmt.Errorf("Cipher suite %s not supported or doesn't exist", n)
		}
	}
	if g, ok := c.FeatureGates["RotateKubeletServerCertificate"]; ok && !g && c.ServerTLSBootstrap {
		return c, false, errors.New("serverTLSBootstrap requires feature gate RotateKubeletServerCertificate")
	}
	return c, seccompFlag || c.SeccompDefault, nil
}

// certutil.NewPool: every PEM CERTIFICATE block must parse, and there must be one.
func clientCAError(path string) string {
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return err.Error()
		}
		n++
	}
	if n == 0 {
		return "data does not contain any valid RSA or ECDSA certificates"
	}
	return ""
}

// Every table setting in the form the differential test compares.
func settingsOf(c internal, seccomp bool, hostname string) map[string]interface{} {
	var ciphers interface{}
	if c.TLSCipherSuites != nil {
		ciphers = c.TLSCipherSuites
	}
	gates := map[string]bool{}
	for k, v := range c.FeatureGates {
		gates[k] = v
	}
	return map[string]interface{}{
		"anonymous-auth":                    c.Authentication.Anonymous.Enabled,
		"authentication-token-webhook":      c.Authentication.Webhook.Enabled,
		"authorization-mode":                c.Authorization.Mode,
		"client-ca-file":                    c.Authentication.X509.ClientCAFile,
		"read-only-port":                    c.ReadOnlyPort,
		"streaming-connection-idle-timeout": c.StreamingConnectionIdleTimeout.Duration.String(),
		"make-iptables-util-chains":         c.MakeIPTablesUtilChains,
		"hostname-override":                 hostname,
		"event-qps":                         c.EventRecordQPS,
		"tls-cert-file":                     c.TLSCertFile,
		"tls-private-key-file":              c.TLSPrivateKeyFile,
		"rotate-certificates":               c.RotateCertificates,
		"rotate-server-certificates":        c.ServerTLSBootstrap,
		"feature-gates":                     gates,
		"tls-cipher-suites":                 ciphers,
		"pod-max-pids":                      c.PodPidsLimit,
		"protect-kernel-defaults":           c.ProtectKernelDefaults,
		"seccomp-default":                   seccomp,
		"healthz-bind-address":              c.HealthzBindAddress,
		"healthz-port":                      c.HealthzPort,
	}
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
		c, seccomp, err := judge(args)
		if err != nil {
			r.Refused = err.Error()
		} else {
			v := c.MakeIPTablesUtilChains
			r.Value = &v
			fs := newFlagSet()
			_ = fs.Parse(args)
			hostname, _ := fs.GetString("hostname-override")
			r.Settings = settingsOf(c, seccomp, hostname)
			r.ClientCAError = clientCAError(c.Authentication.X509.ClientCAFile)
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
