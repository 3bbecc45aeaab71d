package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Credentials is what `steward login` keeps between commands: the server,
// how to trust it, and the CLI session secret. The file is private (0600).
type Credentials struct {
	Server      string    `json:"server"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	CAFile      string    `json:"ca_file,omitempty"`
	Secret      string    `json:"secret"`
	SessionID   string    `json:"session_id"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// CredentialsPath is $STEWARD_CREDENTIALS or the user config directory.
func CredentialsPath() (string, error) {
	if p := os.Getenv("STEWARD_CREDENTIALS"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory; set STEWARD_CREDENTIALS: %w", err)
	}
	return filepath.Join(dir, "steward", "credentials.json"), nil
}

// LoadCredentials reads the saved login; os.ErrNotExist when there is none.
func LoadCredentials() (Credentials, error) {
	var c Credentials
	path, err := CredentialsPath()
	if err != nil {
		return c, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%s is damaged; run `steward login` again", path)
	}
	return c, nil
}

// SaveCredentials writes the login atomically with mode 0600.
func SaveCredentials(c Credentials) error {
	path, err := CredentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(c, "", "  ")
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// RemoveCredentials forgets the saved login.
func RemoveCredentials() error {
	path, err := CredentialsPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
