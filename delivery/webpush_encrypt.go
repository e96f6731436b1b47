package delivery

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// WebPushMaxBody is the largest encrypted body push services must accept
// (RFC 8030 section 7.2).
const WebPushMaxBody = 4096

// webPushHeaderLen is salt(16) + rs(4) + idlen(1) + uncompressed P-256 key(65).
const webPushHeaderLen = 16 + 4 + 1 + 65

// WebPushMaxPlaintext is the largest payload that fits WebPushMaxBody in one
// aes128gcm record: the header, the padding delimiter and the GCM tag.
const WebPushMaxPlaintext = WebPushMaxBody - webPushHeaderLen - 1 - 16

// ErrPayloadTooLarge is returned when a payload cannot fit a Web Push body.
var ErrPayloadTooLarge = errors.New("delivery: payload too large")

// ErrBadSubscription is returned for subscription keys that are not a P-256
// point and a 16-byte auth secret.
var ErrBadSubscription = errors.New("delivery: bad web push subscription keys")

// WebPushKeys are the receiving side's keys from a PushSubscription.
type WebPushKeys struct {
	P256dh []byte // the user agent's public key, uncompressed point (65 bytes)
	Auth   []byte // the 16-byte authentication secret
}

// EncryptWebPush encrypts plaintext for the subscription with the aes128gcm
// content coding of RFC 8291, as one record. asPrivate and salt are fresh for
// each message in production; tests pass fixed ones to reproduce RFC 8291
// Appendix A. padTo > 0 pads the plaintext with zeros up to the next multiple
// of padTo (capped by the maximum body size) so that lengths leak less.
func EncryptWebPush(plaintext []byte, keys WebPushKeys, asPrivate *ecdh.PrivateKey, salt []byte, padTo int) ([]byte, error) {
	if len(plaintext) > WebPushMaxPlaintext {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrPayloadTooLarge, len(plaintext), WebPushMaxPlaintext)
	}
	if len(salt) != 16 {
		return nil, errors.New("delivery: salt must be 16 bytes")
	}
	uaPublic, err := ecdh.P256().NewPublicKey(keys.P256dh)
	if err != nil || len(keys.Auth) != 16 {
		return nil, ErrBadSubscription
	}
	secret, err := asPrivate.ECDH(uaPublic)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSubscription, err)
	}
	asPublic := asPrivate.PublicKey().Bytes()
	cek, nonce := webPushDerive(secret, keys.Auth, keys.P256dh, asPublic, salt)

	padded := len(plaintext)
	if padTo > 0 {
		padded = (len(plaintext) + padTo) / padTo * padTo
		padded = min(padded, WebPushMaxPlaintext)
	}
	body := make([]byte, webPushHeaderLen, webPushHeaderLen+padded+1+16)
	copy(body, salt)
	// One record holds the whole message, so the record size only has to be
	// at least the record's length; 4096 is what browsers and RFC 8291 use.
	binary.BigEndian.PutUint32(body[16:20], 4096)
	body[20] = 65
	copy(body[21:], asPublic)

	record := body[webPushHeaderLen : webPushHeaderLen+padded+1]
	copy(record, plaintext)
	record[len(plaintext)] = 0x02 // last-record delimiter, then zero padding
	clear(record[len(plaintext)+1:])

	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	return gcm.Seal(body[:webPushHeaderLen], nonce, record, nil), nil
}

// DecryptWebPush reverses EncryptWebPush given the receiver's private key and
// auth secret. The simulator uses it to prove what a browser would read.
func DecryptWebPush(body []byte, uaPrivate *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("delivery: web push body shorter than its header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if idlen != 65 || len(body) < 21+idlen+17 {
		return nil, errors.New("delivery: web push header has no P-256 key id")
	}
	asPublic := body[21 : 21+idlen]
	ciphertext := body[21+idlen:]
	if uint32(len(ciphertext)) > rs {
		return nil, errors.New("delivery: web push body spans more than one record")
	}
	asKey, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("delivery: web push key id: %w", err)
	}
	secret, err := uaPrivate.ECDH(asKey)
	if err != nil {
		return nil, fmt.Errorf("delivery: web push ecdh: %w", err)
	}
	cek, nonce := webPushDerive(secret, auth, uaPrivate.PublicKey().Bytes(), asPublic, salt)
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	record, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("delivery: web push decrypt: %w", err)
	}
	i := len(record) - 1
	for i >= 0 && record[i] == 0 {
		i--
	}
	if i < 0 || record[i] != 0x02 {
		return nil, errors.New("delivery: web push record has no last-record delimiter")
	}
	return record[:i], nil
}

// webPushDerive is the key schedule of RFC 8291 section 3.4 and RFC 8188
// section 2.2, written out with HMAC because each HKDF step needs one block.
func webPushDerive(ecdhSecret, auth, uaPublic, asPublic, salt []byte) (cek, nonce []byte) {
	prkKey := hmacSHA256(auth, ecdhSecret)
	keyInfo := make([]byte, 0, 14+65+65+1)
	keyInfo = append(keyInfo, "WebPush: info\x00"...)
	keyInfo = append(keyInfo, uaPublic...)
	keyInfo = append(keyInfo, asPublic...)
	keyInfo = append(keyInfo, 1)
	ikm := hmacSHA256(prkKey, keyInfo)
	prk := hmacSHA256(salt, ikm)
	cek = hmacSHA256(prk, []byte("Content-Encoding: aes128gcm\x00\x01"))[:16]
	nonce = hmacSHA256(prk, []byte("Content-Encoding: nonce\x00\x01"))[:12]
	return cek, nonce
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("delivery: aes: %w", err)
	}
	return cipher.NewGCM(block)
}
