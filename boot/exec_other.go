//go:build !(linux && s390x)

package boot

import "errors"

// Exec starts the kernel; only the linux/s390x loader under metal can. Elsewhere it fails.
func Exec(p *Plan, m *Mem) error {
	return errors.New("boot: kexec: only the linux/s390x loader can start a kernel (use -dry-run on a host)")
}
