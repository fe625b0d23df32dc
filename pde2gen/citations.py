"""The papers pde2gen cites: (citation, what it contributes here). Plain data, shared by the family
declarations (pde2gen/families/<name>/) and the report writer (pde2gen.report.explain)."""
GENPHYS = ("GenPhys: Liu, Luo, Xu, Jaakkola, Tegmark, arXiv:2304.02637",
           "s-generative PDEs: a density flow (C1) and smoothing, Im omega(k) < Im omega(0) (C2)")
PFGM = ("PFGM: Xu, Liu, Tegmark, Jaakkola, arXiv:2209.11178",
        "Poisson flow: the electric field of the data in N + 1 dimensions, Cauchy-type prior")
PFGM_PP = ("PFGM++: Xu et al., arXiv:2302.04265",
           "Poisson in N + D dimensions read at radius r = sigma sqrt(D): Student-t; D -> oo is diffusion")
KAC = ("Kac flows: Duong, Chemseddine, Friz, Steidl, arXiv:2506.20641",
       "a 1-D Kac process (telegraph equation) per coordinate: the product construction, speed bounded by c")
EDM = ("EDM: Karras, Aittala, Aila, Laine, arXiv:2206.00364",
       "the noise grid sigma_i (rho = 7) that sets the time grid, and diffusion's probability-flow ODE")
