module github.com/brana-ot/brana

go 1.26

require (
	github.com/goburrow/modbus v0.1.0 // indirect
	github.com/goburrow/serial v0.1.0 // indirect
	github.com/simonvetter/modbus v1.6.4 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
)
