package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// LocalKeys is a key pair kept in a folder, as `gaia up` keeps its own:
// signing.key (the Ed25519 private key, mode 0600) and public.pem (the public
// keys every service verifies with).
type LocalKeys struct {
	Dir            string
	SigningKeyFile string
	PublicKeysFile string
	Signer         *Signer
}

// EnsureLocalKeys reads the key pair in dir, or makes one when there is
// none; created says which.
func EnsureLocalKeys(dir string) (k *LocalKeys, created bool, err error) {
	k = &LocalKeys{Dir: dir, SigningKeyFile: filepath.Join(dir, "signing.key"), PublicKeysFile: filepath.Join(dir, "public.pem")}
	priv, err := ReadPrivateKey(k.SigningKeyFile)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if priv, err = GenerateKey(); err != nil {
			return nil, false, err
		}
		pemKey, err := EncodePrivateKey(priv)
		if err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, err
		}
		if err := WriteFileAtomic(k.SigningKeyFile, pemKey, 0o600); err != nil {
			return nil, false, err
		}
		created = true
	default:
		return nil, false, err
	}
	k.Signer = NewSigner(priv)
	// The public key file is rewritten only when it lacks the signing key, so
	// that keys added by hand for a rotation stay.
	if keys, err := ReadPublicKeys(k.PublicKeysFile); err == nil {
		if _, ok := keys[k.Signer.KeyID()]; ok {
			return k, created, nil
		}
	}
	pub, err := EncodePublicKeys(k.Signer.PublicKey())
	if err != nil {
		return nil, false, err
	}
	if err := WriteFileAtomic(k.PublicKeysFile, pub, 0o644); err != nil {
		return nil, false, err
	}
	return k, created, nil
}
