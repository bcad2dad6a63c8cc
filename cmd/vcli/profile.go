package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/vserv/vserv/internal/secure"
)

// profile is one [NAME] table of the client profile file
// (~/.config/vserv/config.toml, docs/operations.md "Client profiles"). Each
// key is a global option's long name; a flag given on the command line wins.
type profile struct {
	Host       string `toml:"host"`
	Port       int    `toml:"port"`
	User       string `toml:"user"`
	PassFile   string `toml:"pass-file"`
	ServerKey  string `toml:"server-key"`
	KnownHosts string `toml:"known-hosts"`
	Timeout    string `toml:"timeout"`
}

// defaultProfile applies when neither --profile nor $VSERV_PROFILE names one.
const defaultProfile = "default"

// profilePath is config.toml next to the default known_hosts, so that
// $XDG_CONFIG_HOME moves both.
func profilePath() (string, error) {
	kh, err := secure.DefaultKnownHostsPath()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(kh), "config.toml"), nil
}

// applyProfile reads the profile file and sets every global option the
// command line left unset from the chosen profile. A named profile must
// exist; the [default] one applies only if it is there.
func (a *app) applyProfile(flags *pflag.FlagSet) error {
	name, named := a.opts.profile, a.opts.profile != ""
	if !named {
		if env := os.Getenv("VSERV_PROFILE"); env != "" {
			name, named = env, true
		}
	}
	if !named {
		name = defaultProfile
	}
	path, err := profilePath()
	if err != nil {
		if named {
			return usagef("profile %s: %v", name, err)
		}
		return nil
	}
	profiles, err := readProfiles(path)
	if errors.Is(err, fs.ErrNotExist) {
		if named {
			return usagef("profile %s: there is no %s", name, path)
		}
		return nil
	}
	if err != nil {
		return usagef("%v", err)
	}
	p, ok := profiles[name]
	if !ok {
		if named {
			return usagef("%s has no profile [%s] (it has: %s)", path, name, strings.Join(sortedKeys(profiles), ", "))
		}
		return nil
	}
	a.profileUsed = name
	set := func(flag, value string) error {
		if value == "" || flags.Changed(flag) {
			return nil
		}
		if err := flags.Set(flag, value); err != nil {
			return usagef("%s [%s] %s = %q: %v", path, name, flag, value, err)
		}
		return nil
	}
	port := ""
	if p.Port != 0 {
		port = strconv.Itoa(p.Port)
	}
	// The pass file belongs to the profile's user: -u OTHER or -t on the
	// command line means another password source.
	passFile := p.PassFile
	if flags.Changed("user") || flags.Changed("prompt") {
		passFile = ""
	}
	if passFile != "" {
		passFile = resolveProfilePath(path, passFile)
	}
	knownHosts := p.KnownHosts
	if knownHosts != "" {
		knownHosts = resolveProfilePath(path, knownHosts)
	}
	for _, kv := range [][2]string{
		{"host", p.Host}, {"port", port}, {"user", p.User}, {"pass-file", passFile},
		{"server-key", p.ServerKey}, {"known-hosts", knownHosts}, {"timeout", p.Timeout},
	} {
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// readProfiles decodes the file strictly: an unknown key is an error naming
// it, since a mistyped "pass_file" silently ignored would send no password.
func readProfiles(path string) (map[string]profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var profiles map[string]profile
	md, err := toml.Decode(string(b), &profiles)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s (a profile knows host, port, user, pass-file, server-key, known-hosts, timeout)", path, strings.Join(keys, ", "))
	}
	return profiles, nil
}

// resolveProfilePath expands a leading ~/ and makes a relative path relative
// to the profile file's directory, so the file means the same from any
// working directory.
func resolveProfilePath(profileFile, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(profileFile), p)
}

func sortedKeys(m map[string]profile) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
