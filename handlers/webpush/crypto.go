// Package webpush speaks the Web Push protocol from the application
// server's side: message encryption (RFC 8291, aes128gcm), VAPID (RFC
// 8292), the request to a push service (RFC 8030), and the worker that
// turns Herald's push queue into requests. Standard library only: the
// encryption is held to the RFC 8291 example (Appendix A).
package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the keys a browser's subscription carries.
const (
	// PublicKeySize is an uncompressed P-256 point.
	PublicKeySize = 65
	// AuthSize is the authentication secret of RFC 8291.
	AuthSize = 16
)

// recordSize is the record size written in the header. A message is one
// record, so a payload may be at most recordSize-17 bytes (16 of tag, one
// delimiter); push services accept 4,096 bytes of body, header included.
const recordSize = 4096

// headerSize is salt (16), rs (4), idlen (1) and the sender's key (65).
const headerSize = 16 + 4 + 1 + PublicKeySize

// MaxPayload is the largest payload Encrypt takes: the body must stay
// within the 4,096 bytes every push service accepts.
const MaxPayload = 4096 - headerSize - 16 - 1

// b64 is the unpadded base64url of Web Push keys.
var b64 = base64.RawURLEncoding

// DecodeKey decodes base64url, with or without padding (browsers' toJSON
// leaves it out; some libraries add it).
func DecodeKey(s string) ([]byte, error) {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return b64.DecodeString(s)
}

// Encrypt encrypts payload for the browser whose subscription keys are
// p256dh and auth, as one aes128gcm record with a fresh salt and a fresh
// sender key.
func Encrypt(payload, p256dh, auth []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encrypt(payload, p256dh, auth, as, salt)
}

// encrypt is Encrypt with the sender key and salt given (the RFC example
// fixes both).
func encrypt(payload, p256dh, auth []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("payload of %d bytes: at most %d fit a push message", len(payload), MaxPayload)
	}
	if len(auth) != AuthSize {
		return nil, fmt.Errorf("auth secret of %d bytes; want %d", len(auth), AuthSize)
	}
	ua, err := ecdh.P256().NewPublicKey(p256dh)
	if err != nil {
		return nil, fmt.Errorf("subscription key: %w", err)
	}
	asPublic := as.PublicKey().Bytes()
	gcm, nonce, err := contentKey(as, ua, p256dh, asPublic, auth, salt)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerSize, headerSize+len(payload)+1+gcm.Overhead())
	copy(out, salt)
	binary.BigEndian.PutUint32(out[16:], recordSize)
	out[20] = PublicKeySize
	copy(out[21:], asPublic)
	// The last (only) record ends with the delimiter 0x02 and no padding.
	plain := append(append(make([]byte, 0, len(payload)+1), payload...), 2)
	return gcm.Seal(out, nonce, plain, nil), nil
}

// contentKey derives the record cipher and nonce (RFC 8291 §3.4, RFC 8188
// §2.2) from the shared secret of priv and peer.
func contentKey(priv *ecdh.PrivateKey, peer *ecdh.PublicKey, uaPublic, asPublic, auth, salt []byte) (cipher.AEAD, []byte, error) {
	secret, err := priv.ECDH(peer)
	if err != nil {
		return nil, nil, err
	}
	info := "WebPush: info\x00" + string(uaPublic) + string(asPublic)
	ikm, err := hkdf.Key(sha256.New, secret, auth, info, 32)
	if err != nil {
		return nil, nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	return gcm, nonce, err
}

// Decrypt is the browser's side of Encrypt: it opens a one-record
// aes128gcm body with the subscription's private key and auth secret.
// Herald itself never decrypts; tests and tools that play a browser do.
func Decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < headerSize || body[20] != PublicKeySize {
		return nil, errors.New("not an aes128gcm body with a P-256 sender key")
	}
	if rs := binary.BigEndian.Uint32(body[16:]); int(rs) < len(body)-headerSize {
		return nil, fmt.Errorf("more than one record (rs %d, %d bytes)", rs, len(body)-headerSize)
	}
	salt, asPublic := body[:16], body[21:headerSize]
	as, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, err
	}
	gcm, nonce, err := contentKey(ua, as, ua.PublicKey().Bytes(), asPublic, auth, salt)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, body[headerSize:], nil)
	if err != nil {
		return nil, err
	}
	// Strip the padding: zeros after the last record's delimiter 0x02.
	for i := len(plain) - 1; i >= 0; i-- {
		switch plain[i] {
		case 0:
			continue
		case 2:
			return plain[:i], nil
		}
		break
	}
	return nil, errors.New("no last-record delimiter")
}
