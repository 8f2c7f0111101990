"""features/rooms"""
