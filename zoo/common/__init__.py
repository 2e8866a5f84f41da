"""nn building blocks shared by the zoo's methods (plain ``nn.Module``s, no Lightning)."""
