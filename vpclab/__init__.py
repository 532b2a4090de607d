"""The test lab as a library: emulated hosts (network namespaces with their own
OVS), a controller process, traffic helpers.  Used by tests/lab, bench/ and
scripts/demo; scripts/lab is its command line."""
