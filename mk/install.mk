# make install / uninstall: the user-facing tools into $(DESTDIR)$(PREFIX)/bin.  bitnet-run is
# the engine of the current QUANT (a TL build carries the kernels generated for MODEL's shapes).
# bm-step and the bench drivers are build-time helpers and stay in build/.
#= PREFIX: where make install puts the tools (default /usr/local; binaries go to PREFIX/bin)
PREFIX ?= /usr/local
#= DESTDIR: staging root prepended to PREFIX by make install/uninstall (for packaging)
DESTDIR ?=
INSTALL_BINDIR = $(DESTDIR)$(PREFIX)/bin
INSTALL_TOOLS := hfget gguf-convert i2s-quantize lutgen gguf-dump mkmodel bitnet-kernels

## install: copy bitnet-run, hfget, gguf-convert, i2s-quantize, lutgen, gguf-dump, mkmodel, bitnet-kernels to PREFIX/bin
.PHONY: install
install: $(addprefix $(BIN)/,$(INSTALL_TOOLS)) $(ENGINE_BIN)
	install -d '$(INSTALL_BINDIR)'
	install -m 755 $(addprefix $(BIN)/,$(INSTALL_TOOLS)) '$(INSTALL_BINDIR)'
	install -m 755 $(ENGINE_BIN) '$(INSTALL_BINDIR)/bitnet-run'

## uninstall: remove what make install put in PREFIX/bin
.PHONY: uninstall
uninstall:
	rm -f $(addprefix '$(INSTALL_BINDIR)'/,$(INSTALL_TOOLS) bitnet-run)
