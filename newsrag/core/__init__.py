"""The ground floor: errors and settings models every other layer may use."""
