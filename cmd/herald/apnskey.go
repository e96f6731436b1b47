package main

import (
	"crypto/ecdsa"
	"errors"

	"github.com/sideshow/apns2/token"
)

func apnsPublicKey(p8 string) (*ecdsa.PublicKey, error) {
	key, err := token.AuthKeyFromBytes([]byte(p8))
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("empty apns key")
	}
	return &key.PublicKey, nil
}
