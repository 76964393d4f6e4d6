//go:build !(linux && amd64)

package journal

import "os"

var syncfs func(*os.File) error
