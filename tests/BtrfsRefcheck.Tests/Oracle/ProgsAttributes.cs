namespace BtrfsRefcheck.Tests.Oracle;

/// <summary>An xunit <see cref="FactAttribute"/> that is skipped when btrfs-progs is not installed.</summary>
public sealed class ProgsFactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when <see cref="Progs.Available"/> is false.</summary>
    public ProgsFactAttribute()
    {
        if (!Progs.Available)
            Skip = "btrfs-progs (mkfs.btrfs, btrfs) not installed";
    }
}

/// <summary>An xunit <see cref="TheoryAttribute"/> that is skipped when btrfs-progs is not installed.</summary>
public sealed class ProgsTheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> when <see cref="Progs.Available"/> is false.</summary>
    public ProgsTheoryAttribute()
    {
        if (!Progs.Available)
            Skip = "btrfs-progs (mkfs.btrfs, btrfs) not installed";
    }
}

/// <summary>An xunit <see cref="FactAttribute"/> that is skipped (with the reason) when btrfs-progs 6.19 is not available.</summary>
public sealed class Progs619FactAttribute : FactAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> to <see cref="ProgsOracle.WhyMissing"/> of <see cref="Progs.V619"/>.</summary>
    public Progs619FactAttribute()
    {
        if (!Progs.V619.Available)
            Skip = Progs.V619.WhyMissing;
    }
}

/// <summary>An xunit <see cref="TheoryAttribute"/> that is skipped (with the reason) when btrfs-progs 6.19 is not available.</summary>
public sealed class Progs619TheoryAttribute : TheoryAttribute
{
    /// <summary>Sets <see cref="FactAttribute.Skip"/> to <see cref="ProgsOracle.WhyMissing"/> of <see cref="Progs.V619"/>.</summary>
    public Progs619TheoryAttribute()
    {
        if (!Progs.V619.Available)
            Skip = Progs.V619.WhyMissing;
    }
}
