package boot

import (
	"bytes"
	"fmt"
)

// cpioFile is one entry of a newc archive.
type cpioFile struct {
	Name string
	Mode uint32 // including the type bits (0o100755 for an executable file)
	Data []byte
}

// newcArchive writes files as an uncompressed cpio "newc" archive (what the kernel's
// initramfs unpacker reads), ending with the TRAILER!!! entry.
func newcArchive(files []cpioFile) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	entry := func(ino int, f cpioFile) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, f.Mode, 0, 0, 1, 0, len(f.Data), 0, 0, 0, 0, len(f.Name)+1, 0)
		b.WriteString(f.Name)
		b.WriteByte(0)
		pad()
		b.Write(f.Data)
		pad()
	}
	for i, f := range files {
		entry(i+1, f)
	}
	entry(len(files)+1, cpioFile{Name: "TRAILER!!!"})
	return b.Bytes()
}
