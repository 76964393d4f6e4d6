package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// revocationFile keeps the revocations made through the admin API in
// admin.revocations_file, so that a restarted gateway keeps them in force
// (the proxy holds revocations in memory only). The file is a JSON list of
// revocationJSON, rewritten atomically (write, fsync, rename) on every
// change; the proxy's state is changed first, so a revocation is in force
// even when saving it fails (the API then answers 500).
type revocationFile struct {
	path string // empty: nothing is saved
	mu   sync.Mutex
	list []revocationJSON // as saved, oldest first
}

// loadRevocations reads admin.revocations_file (absent: none yet) and
// applies its revocations to the gateway's proxy. Its errors name the key.
func loadRevocations(cfg *config, g *gateway) (*revocationFile, error) {
	rf := &revocationFile{}
	if cfg.Admin == nil || cfg.Admin.RevocationsFile == "" {
		return rf, nil
	}
	rf.path = string(cfg.Admin.RevocationsFile)
	const key = "admin.revocations_file"
	if fi, err := os.Stat(filepath.Dir(rf.path)); err != nil {
		return nil, cfg.problemAt(key, "the file's directory: %w", err)
	} else if !fi.IsDir() {
		return nil, cfg.problemAt(key, "%s is not a directory", filepath.Dir(rf.path))
	}
	b, err := os.ReadFile(rf.path)
	if errors.Is(err, os.ErrNotExist) {
		return rf, nil
	}
	if err != nil {
		return nil, cfg.problemAt(key, "%w", err)
	}
	if err := json.Unmarshal(b, &rf.list); err != nil {
		return nil, cfg.problemAt(key, "%s is not a list of revocations: %w", rf.path, err)
	}
	for i, r := range rf.list {
		if r.Subject == "" {
			return nil, cfg.problemAt(key, "%s: revocation %d has no subject", rf.path, i+1)
		}
		if _, err := g.proxy.Revoke(r.Issuer, r.Subject, r.Reason); err != nil {
			return nil, cfg.problemAt(key, "%s: revocation %d: %w", rf.path, i+1, err)
		}
	}
	return rf, nil
}

// since returns when the revocation of subject within issuer was made, as
// saved; zero when it is not in the file.
func (rf *revocationFile) since(issuer, subject string) time.Time {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if i := rf.index(issuer, subject); i >= 0 {
		return rf.list[i].Since
	}
	return time.Time{}
}

// index returns the position of the revocation, -1 when it is not there.
// rf.mu is held.
func (rf *revocationFile) index(issuer, subject string) int {
	return slices.IndexFunc(rf.list, func(r revocationJSON) bool { return r.Issuer == issuer && r.Subject == subject })
}

// add records a revocation (replacing one with the same issuer and
// subject) and saves the file.
func (rf *revocationFile) add(r revocationJSON) error {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if i := rf.index(r.Issuer, r.Subject); i >= 0 {
		rf.list = slices.Delete(rf.list, i, i+1)
	}
	rf.list = append(rf.list, r)
	return rf.save()
}

// remove forgets a revocation and saves the file.
func (rf *revocationFile) remove(issuer, subject string) error {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if i := rf.index(issuer, subject); i >= 0 {
		rf.list = slices.Delete(rf.list, i, i+1)
	}
	return rf.save()
}

// save writes the list atomically; rf.mu is held.
func (rf *revocationFile) save() error {
	if rf.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(rf.list, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(rf.path), ".revocations-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), rf.path)
	}
	if err != nil {
		return fmt.Errorf("saving the revocations in %s: %w", rf.path, err)
	}
	if d, err := os.Open(filepath.Dir(rf.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
