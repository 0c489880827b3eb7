//go:build tools

// Package tools pins the kwok controller that the test fixture builds.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
