// Command netipl-link builds netipl.img: metal plus one loader program.
//
//	go run ./linker/cmd/netipl-link -loader ./loader -o build/netipl.img
//	go run ./linker/cmd/netipl-link -loader ./tests/metal/torture -arg -v -env FOO=bar -o build/torture.img
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"netipl/linker"
)

type list []string

func (l *list) String() string     { return fmt.Sprint(*l) }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var o linker.Options
	var args, env list
	flag.StringVar(&o.Loader, "loader", "./loader", "Go package of the loader program (a linux/s390x main package)")
	flag.StringVar(&o.Out, "o", "build/netipl.img", "output image")
	flag.Var(&args, "arg", "extra argv entry for the loader (repeatable)")
	flag.Var(&env, "env", "environment entry KEY=value for the loader (repeatable)")
	flag.Parse()
	o.Args, o.Env = args, env
	if err := linker.Build(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
