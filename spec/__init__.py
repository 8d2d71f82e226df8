"""libimage.spec: the executable specification.

The abstract model of a store, the invariants every implementation must satisfy
(each with a stable rule ID from the behaviour references), the hypothesis
generators shared by the tests and the oracle, and the scenario cases.
"""
