"""Pure simulation logic: sampling, token accounting, content, fault decisions, response plans.

Nothing here does I/O, sleeps or reads the clock: randomness comes in as a seeded
`numpy.random.Generator`, time as plain floats.
"""
