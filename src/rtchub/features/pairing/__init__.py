"""features/pairing"""
