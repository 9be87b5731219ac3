// Command protoc-gen-gaia-openapi is the protoc plugin that writes GAIA's
// OpenAPI 3 document (proto/openapi.json) in `make generate`. See
// internal/openapigen for what the document says and why.
//
// Parameters: gateway=<path of gateway.yaml>, overlay=<path of openapi.yaml>,
// out=<file name>; paths are relative to where buf runs (the repository root).
package main

import (
	"flag"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/gaia-platform/gaia/internal/openapigen"
)

func main() {
	var flags flag.FlagSet
	gateway := flags.String("gateway", "proto/gateway.yaml", "grpc_api_configuration file")
	overlay := flags.String("overlay", "proto/openapi.yaml", "document overlay")
	out := flags.String("out", "openapi.json", "output file, relative to the plugin's out directory")
	protogen.Options{ParamFunc: flags.Set}.Run(func(gen *protogen.Plugin) error {
		gen.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)
		// The document covers the API: files that declare services and the
		// files they import. Others, such as the coordinator's Raft log
		// format (gaia.coordinator.raftlog.v1), are storage, and their
		// message names would otherwise clash with the API's.
		api := map[string]bool{}
		var mark func(fd protoreflect.FileDescriptor)
		mark = func(fd protoreflect.FileDescriptor) {
			if api[fd.Path()] {
				return
			}
			api[fd.Path()] = true
			for i := range fd.Imports().Len() {
				mark(fd.Imports().Get(i).FileDescriptor)
			}
		}
		for _, f := range gen.Files {
			if f.Generate && f.Desc.Services().Len() > 0 {
				mark(f.Desc)
			}
		}
		var files []*protogen.File
		for _, f := range gen.Files {
			if f.Generate && api[f.Desc.Path()] {
				files = append(files, f)
			}
		}
		doc, err := openapigen.Build(files, openapigen.Options{
			GatewayConfig: *gateway,
			Overlay:       *overlay,
			Security:      policy,
		})
		if err != nil {
			return err
		}
		g := gen.NewGeneratedFile(*out, "")
		_, err = g.Write(doc)
		return err
	})
}
