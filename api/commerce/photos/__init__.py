"""Commerce: photos of chefs' kitchens and dishes and couriers' proof of delivery."""
