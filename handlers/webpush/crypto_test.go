package webpush

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"
)

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := DecodeKey(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// The example of RFC 8291 Appendix A (the message of §5).
const (
	rfcPlaintext = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcASPublic  = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcMessage   = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

func TestEncryptRFC8291Example(t *testing.T) {
	as, err := ecdh.P256().NewPrivateKey(mustB64(t, rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(as.PublicKey().Bytes(), mustB64(t, rfcASPublic)) {
		t.Fatal("the sender's public key differs from the RFC's")
	}
	got, err := encrypt(mustB64(t, rfcPlaintext), mustB64(t, rfcUAPublic), mustB64(t, rfcAuth), as, mustB64(t, rfcSalt))
	if err != nil {
		t.Fatal(err)
	}
	if want := mustB64(t, rfcMessage); !bytes.Equal(got, want) {
		t.Fatalf("encrypt(RFC 8291 example):\n got %s\nwant %s", b64.EncodeToString(got), rfcMessage)
	}
}

func TestDecryptRFC8291Example(t *testing.T) {
	ua, err := ecdh.P256().NewPrivateKey(mustB64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decrypt(mustB64(t, rfcMessage), ua, mustB64(t, rfcAuth))
	if err != nil {
		t.Fatal(err)
	}
	if want := "When I grow up, I want to be a watermelon"; string(got) != want {
		t.Fatalf("Decrypt = %q; want %q", got, want)
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	ua, _ := ecdh.P256().GenerateKey(nil)
	auth := bytes.Repeat([]byte{7}, AuthSize)
	for _, n := range []int{0, 1, 100, MaxPayload} {
		payload := bytes.Repeat([]byte("x"), n)
		body, err := Encrypt(payload, ua.PublicKey().Bytes(), auth)
		if err != nil {
			t.Fatalf("Encrypt(%d bytes): %v", n, err)
		}
		if n == MaxPayload && len(body) != 4096 {
			t.Errorf("the largest payload makes %d bytes of body; want 4096", len(body))
		}
		got, err := Decrypt(body, ua, auth)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := Encrypt(make([]byte, MaxPayload+1), ua.PublicKey().Bytes(), auth); err == nil {
		t.Error("Encrypt took a payload too large for one push")
	}
	bad := []struct {
		name         string
		p256dh, auth []byte
	}{
		{"short key", ua.PublicKey().Bytes()[:33], auth},
		{"not on the curve", append([]byte{4}, bytes.Repeat([]byte{1}, 64)...), auth},
		{"short auth", ua.PublicKey().Bytes(), auth[:8]},
	}
	for _, tt := range bad {
		if _, err := Encrypt([]byte("x"), tt.p256dh, tt.auth); err == nil {
			t.Errorf("%s: Encrypt succeeded", tt.name)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKey(k.Private())
	if err != nil {
		t.Fatal(err)
	}
	if back.Public() != k.Public() || len(mustB64(t, k.Public())) != PublicKeySize {
		t.Fatalf("public key %q after a round trip; want %q (65 bytes)", back.Public(), k.Public())
	}
	// The RFC's sender key, as web-push tools print it.
	rfc, err := ParseKey(rfcASPrivate)
	if err != nil || rfc.Public() != rfcASPublic {
		t.Fatalf("ParseKey(RFC key) public %v, %v; want %s", rfc, err, rfcASPublic)
	}
	for _, bad := range []string{"", "!!", b64.EncodeToString(make([]byte, 31)), b64.EncodeToString(make([]byte, 32))} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}

func TestAuthorization(t *testing.T) {
	k, _ := GenerateKey()
	exp := time.Unix(1_900_000_000, 0)
	h, err := k.Authorization("https://push.example.net:8443/wpush/v2/abc?x=1", "mailto:ops@corp.example", exp)
	if err != nil {
		t.Fatal(err)
	}
	tok, pub, ok := strings.Cut(strings.TrimPrefix(h, "vapid t="), ", k=")
	if !strings.HasPrefix(h, "vapid t=") || !ok || pub != k.Public() {
		t.Fatalf("Authorization = %q; want vapid t=…, k=%s", h, k.Public())
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tok)
	}
	var header, claims map[string]any
	json.Unmarshal(mustB64(t, parts[0]), &header)
	json.Unmarshal(mustB64(t, parts[1]), &claims)
	if header["alg"] != "ES256" || header["typ"] != "JWT" {
		t.Errorf("header %v", header)
	}
	if claims["aud"] != "https://push.example.net:8443" || claims["sub"] != "mailto:ops@corp.example" || claims["exp"] != float64(exp.Unix()) {
		t.Errorf("claims %v", claims)
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), mustB64(t, pub)) //nolint:staticcheck // a test reads the point
	sig := mustB64(t, parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, digest[:],
		new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("the signature does not verify with the public key")
	}
}
