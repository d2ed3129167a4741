"""Pure rules and contracts: no I/O, no AWS, no HTTP; each a function of its inputs."""
