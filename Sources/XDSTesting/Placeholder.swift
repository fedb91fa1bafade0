package enum XDSTestingPlaceholder {}
