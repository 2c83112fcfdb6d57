// Command metal only links package metal into an executable; its entry point is
// netipl/metal.kentry (selected with -ldflags -E), so main never runs. Build it through the
// linker (go run ./linker/cmd/netipl-link), which sets -E and -T.
package main

import _ "netipl/metal"

func main() {}
