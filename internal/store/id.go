package store

import "github.com/google/uuid"

// NewID returns a time-ordered unique ID (UUIDv7), so ordering by ID is
// ordering by creation and cursor pagination needs no second column.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }
