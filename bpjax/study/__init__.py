"""The study's next phase: trainees who learn, tips per person and over rounds, a simulated experiment."""
