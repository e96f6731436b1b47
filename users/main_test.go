package users_test

import (
	"testing"

	"github.com/herald-im/herald/database/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
